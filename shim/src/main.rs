//! containerd-shim-vbuild-v2: containerd's shim v2 (runtime type
//! `io.containerd.vbuild.v2`) that does the container work in process
//! with vbuild-oci's library (no runtime binary exec'd per call).

mod anys;
mod console;
mod daemon;
mod events;
mod flags;
mod rootfs;
mod service;
mod stats;
mod stdio;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flags = match flags::parse(&args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("containerd-shim-vbuild-v2: {e}");
            std::process::exit(2);
        }
    };
    let r = match flags.action.as_str() {
        "start" => daemon::start(&flags),
        "delete" => service::delete_bundle(&flags),
        "version" => {
            println!("containerd-shim-vbuild-v2 {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        "" => daemon::serve(&flags),
        other => Err(format!(
            "unknown action {other:?}: containerd runs this shim with start or delete"
        )),
    };
    if let Err(e) = r {
        eprintln!("containerd-shim-vbuild-v2: {e}");
        std::process::exit(1);
    }
}
