//! Mach-O files of the macOS interpreters cross-built from Linux with zig cc,
//! by concern:
//!
//! - [`parse`]: magics, recognising Mach-O files (thin or fat, not Java
//!   classes) and finding them under a tree, cputype names; shared by the
//!   others.
//! - [`check`]: structural validation of an image against a target's
//!   [`MachoRules`]: the right architecture and deployment target, only
//!   system dylibs (never OpenSSL), no LC_RPATH, PIE executables, signed
//!   arm64 code, and no exported symbols of the libraries we link statically.
//! - [`symbols`]: what an image exports and which CPython symbols it leaves
//!   for the interpreter to provide.
//! - [`fat`]: merging two thin images into a universal (fat) file, as
//!   `lipo -create` would, since there is no lipo on a Linux build machine.
//! - [`hide`]: making the defined symbols of an object file private extern,
//!   for the archive-member walk in `crate::hide`.

mod check;
mod fat;
mod hide;
mod parse;
mod symbols;
#[cfg(test)]
mod testimg;

pub use check::{check_macho, MachoRules};
pub use fat::merge_universal;
pub(crate) use hide::hide_object_symbols;
pub use parse::{is_macho, macho_files};
pub use symbols::{exported_names, python_symbols_needed};
