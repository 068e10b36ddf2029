//! The resolv.conf the builder's template renders is, byte for byte, the
//! text the runtime renders: `start` recognises the file vbuild wrote
//! before networks had a name responder by that text and brings it up to
//! date (runtime/src/net/resolv.rs), so the two must never drift apart.

use std::net::IpAddr;
use vbuild_builder::tailor::{load_profile, write_network, NetVars};
use vbuild_runtime::net::resolv;

#[test]
fn the_template_renders_what_the_runtime_recognises() {
    let cases: [(&[&str], &[&str]); 3] = [
        (&["9.9.9.9", "149.112.112.112"], &[]),
        (&["10.77.0.1", "9.9.9.9"], &["vbuild"]),
        (&["fd77::1", "2620:fe::fe"], &["vbuild"]),
    ];
    for profile in ["debian", "fedora"] {
        let spec = load_profile(profile).unwrap();
        for (servers, search) in cases {
            let d = tempfile::tempdir().unwrap();
            let net = NetVars {
                addresses: vec!["10.77.0.11/24".into()],
                gateway4: Some("10.77.0.1".into()),
                dns: servers.iter().map(|s| s.to_string()).collect(),
                search: search.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            };
            write_network(d.path(), &spec, &net).unwrap();
            let ips: Vec<IpAddr> = servers.iter().map(|s| s.parse().unwrap()).collect();
            assert_eq!(
                std::fs::read_to_string(d.path().join("etc/resolv.conf")).unwrap(),
                resolv::render(&ips, search),
                "{profile}: {servers:?} {search:?}"
            );
        }
    }
}
