//! The `minisdp` binary end to end.

use std::process::Command;

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_minisdp"))
        .args(args)
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap())
}

const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 102\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n\
a=mid:0\r\na=recvonly\r\na=rtpmap:102 H264/90000\r\na=rtcp-fb:102 nack\r\n\
a=fmtp:102 packetization-mode=1;profile-level-id=42e01f\r\n";

#[test]
fn encode_then_decode_both_versions() {
    let dir = std::env::temp_dir().join(format!("minisdp-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sdp = dir.join("offer.sdp");
    std::fs::write(&sdp, OFFER).unwrap();
    for version in ["v0", "ext"] {
        let (ok, hex) = run(&[
            "encode",
            "--sdp",
            sdp.to_str().unwrap(),
            "--version",
            version,
            "--url",
            "webrtc://h/app/s",
            "--seq",
            "42",
            "--pull",
        ]);
        assert!(ok, "{version}");
        let (ok, json) = run(&["decode", hex.trim()]);
        assert!(ok);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["attributes"]["version"], version);
        assert_eq!(v["attributes"]["seq"], 42);
        assert_eq!(v["attributes"]["stream_url"], "webrtc://h/app/s");
        assert_eq!(v["attributes"]["is_push"], "pull");
        assert!(
            v["sdp"]
                .as_str()
                .unwrap()
                .contains("a=rtpmap:102 H264/90000\r\n")
        );
        let bin = dir.join(format!("{version}.bin"));
        std::fs::write(&bin, hex::decode(hex.trim()).unwrap()).unwrap();
        let (ok, sdp_text) = run(&["decode", &format!("@{}", bin.display()), "--output", "sdp"]);
        assert!(ok);
        assert!(sdp_text.starts_with("v=0\r\n"));
    }
    let (ok, stop) = run(&[
        "stop",
        "--version",
        "ext",
        "--svrsig",
        "1.2.3.4:a:b",
        "--seq",
        "3",
    ]);
    assert!(ok);
    let (ok, json) = run(&["decode", stop.trim(), "--output", "attrs"]);
    assert!(ok);
    assert!(json.contains("\"packet\": \"STP\""));
    assert!(!run(&["decode", "ff5344"]).0, "truncated packet must fail");
    std::fs::remove_dir_all(&dir).unwrap();
}
