//! containerd-shim-vbuild-v2: containerd's shim v2 (runtime type
//! `io.containerd.vbuild.v2`) that does the container work in process
//! with vbuild-oci's library (no runtime binary exec'd per call).

mod daemon;
mod rootfs;
mod service;
mod stdio;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let flags = match containerd_shim::parse(&args[1..]) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("containerd-shim-vbuild-v2: {e}");
            std::process::exit(2);
        }
    };
    let r = match flags.action.as_str() {
        "start" => daemon::start(&flags),
        "delete" => service::delete_bundle(&flags),
        _ => daemon::serve(&flags),
    };
    if let Err(e) = r {
        eprintln!("containerd-shim-vbuild-v2: {e}");
        std::process::exit(1);
    }
}
