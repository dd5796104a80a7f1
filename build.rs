//! Link flags for release binaries: gold's identical code folding where gold is installed.
//!
//! Generic code is instantiated again in every crate and codegen unit that uses it (the
//! derived `Hash` of sqlparser's `Statement`, for one, 61 times), and without LTO nothing
//! merges the copies. Folding identical functions at link time takes a release binary from
//! about 120 MB to about 80 MB, at no cost in build time; LTO would do more, but takes over
//! half an hour on two cores. Debug builds are left to the default linker.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=PATH");
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if release && linux && on_path("ld.gold") {
        println!("cargo::rustc-link-arg-bins=-fuse-ld=gold");
        println!("cargo::rustc-link-arg-bins=-Wl,--icf=all");
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}
