//! Links the `eddy` binary with packed relative relocations (`DT_RELR`).
//!
//! A position-independent executable carries one relocation per pointer in its read-only
//! data (vtables, string tables: about 150,000 here), which the loader reads at every start:
//! as 24-byte `RELA` entries they are 3.5 MB of the binary, all of it resident in every
//! process. Packed, they are a few kilobytes, and the executable stays position-independent
//! (its addresses still randomized). Needs glibc 2.36 and binutils 2.38 or LLVM's lld 15.
fn main() {
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    let gnu = std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if linux && gnu {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
