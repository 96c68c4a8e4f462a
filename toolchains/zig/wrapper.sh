#!/bin/sh
# zig as the cross toolchain for one target. tlsforge copies this file into
# the cache as cc, c++, ar and ranlib of a toolchain, with the @…@ values
# filled in (toolchains/<triple>.toml, [zig]); build systems then call it as
# an ordinary compiler. It rewrites the flags zig handles differently from
# Apple's clang and ld64 (found in toolchains/darwin/LAB.md) and from gcc.
ZIG='@ZIG@'
TOOL='@TOOL@'
TARGET='@TARGET@'
export ZIG_GLOBAL_CACHE_DIR='@ZIG_CACHE@'
export ZIG_LOCAL_CACHE_DIR='@ZIG_CACHE@'
# clang's profile runtime of zig's LLVM release (empty: the toolchain has
# no PGO): clang's driver links it into every instrumented program, zig's
# does not.
PROFILE_RUNTIME='@PROFILE_RUNTIME@'
case $TOOL in
  ar|ranlib) exec "$ZIG" "$TOOL" "$@" ;;
esac
# Rebuild "$@" without the flags zig cannot take.
n=$#
skip=0
lang=
link=1
asm=
instrumented=
while [ "$n" -gt 0 ]; do
  a=$1
  shift
  n=$((n - 1))
  if [ "$skip" = 1 ]; then skip=0; continue; fi
  case $a in
    # The architecture and OS version come from -target: '-arch x86_64'
    # next to an aarch64 target is an error, and zig ignores
    # -mmacosx-version-min (LC_BUILD_VERSION's minos is the -target's).
    -arch) skip=1 ;;
    -mmacosx-version-min=*|--target=*|-target) ;;
    # 'zig cc -bundle' crashes; a dylib loads through dlopen the same way.
    -bundle) set -- "$@" -shared ;;
    -Wl,-search_paths_first) ;;
    # ld64 reads -stack_size as hex, zig's linker as decimal.
    -Wl,-stack_size,0x*) set -- "$@" "$a" ;;
    -Wl,-stack_size,*) set -- "$@" "-Wl,-stack_size,0x${a#-Wl,-stack_size,}" ;;
    # Source on stdin: zig hands it to clang with the glibc-versioned
    # triple ('x86_64-linux-gnu.2.17'), which clang rejects, unless the
    # language is named (zig then compiles it itself).
    -x|-x*) lang=1; set -- "$@" "$a" ;;
    assembler|assembler-with-cpp|*.s|*.S) asm=1; set -- "$@" "$a" ;;
    -c|-E|-S) link=; set -- "$@" "$a" ;;
    -fprofile-instr-generate*|-fprofile-generate*) instrumented=1; set -- "$@" "$a" ;;
    -) if [ -z "$lang" ]; then set -- "$@" -x c -; else set -- "$@" -; fi ;;
    *) set -- "$@" "$a" ;;
  esac
done
# OpenSSL's build (TLSFORGE_GNU_AS=1, toolchains' openssl_gnu_as): its
# assembly and its perlasm's assembler probe (`-Wa,-v`) go through GNU as.
# (First: after the input the flag no longer reaches the assembler. zig
# still hands its clang-assembler flags on, which GNU as cannot use.)
if [ -n "$asm" ] && [ -n "$TLSFORGE_GNU_AS" ]; then
  case " $* " in
    # The probe itself (`$CC -Wa,-v -c -o /dev/null -x assembler
    # /dev/null`): zig caches compilations, so every probe after the first
    # would print nothing and look like no GNU as. GNU as answers itself.
    *" -Wa,-v "*) exec as -v -o /dev/null /dev/null </dev/null ;;
  esac
  set -- -fno-integrated-as -Wno-unused-command-line-argument "$@"
fi
if [ -n "$instrumented" ] && [ -n "$link" ] && [ -n "$PROFILE_RUNTIME" ]; then
  # (-u: nothing in instrumented code references the runtime's
  # initialiser, which registers the at-exit profile writer)
  set -- "$@" -Wl,-u,__llvm_profile_runtime "$PROFILE_RUNTIME"
fi
exec "$ZIG" "$TOOL" -target "$TARGET" "$@"
