#!/usr/bin/env bash
# Reproduce the macOS cross-compile lab (CPython 3.13.5 and 2.7.18 for aarch64/x86_64-apple-darwin,
# zig cc from PyPI "ziglang", OpenSSL 4.0.3 static) from scratch on a Linux x86_64 host.
# Inputs (read only): ~/.cache/tlsforge/src/{cpython-3.13.5,cpython-2.7.18,zlib}-*,
#   ~/.cargo/registry/src/*/openssl-src-400*/openssl, native tlsforge builds of 3.13.5 and 2.7.18
#   under ~/.cache/tlsforge/cpython/ (the build pythons).
# Usage: [MACOS_LAB=/tmp/macos-lab] [PY27=0] ./build.sh [aarch64] [x86_64]
# Every compile runs under nice -n 19 with make -j2.
set -euo pipefail
LAB=${MACOS_LAB:-/tmp/macos-lab}; export MACOS_LAB=$LAB
mkdir -p "$LAB"
# ---- helper files (written verbatim) ----
mkdir -p "$LAB/bin"
cat > "$LAB/bin/zig-cc-wrapper" <<'LAB_FILE_BIN_ZIG_CC_WRAPPER'
#!/usr/bin/env bash
# Generic zig cc wrapper for macOS cross builds. Invoked via symlinks:
#   cc-aarch64-macos / c++-aarch64-macos / cc-x86_64-macos / c++-x86_64-macos
# Env: ZIGPY (python with ziglang installed), MACOS_MIN_ARM64 (default 11.0),
#      MACOS_MIN_X86_64 (default 10.15).
LAB=${MACOS_LAB:-/tmp/macos-lab}
ZIGPY=${ZIGPY:-$LAB/venv/bin/python}
export ZIG_GLOBAL_CACHE_DIR=${ZIG_GLOBAL_CACHE_DIR:-$LAB/zig-cache}
export ZIG_LOCAL_CACHE_DIR=${ZIG_LOCAL_CACHE_DIR:-$ZIG_GLOBAL_CACHE_DIR}
me=$(basename "$0")
case "$me" in
  cc-aarch64-macos)  tool=cc;  target=aarch64-macos.${MACOS_MIN_ARM64:-11.0} ;;
  c++-aarch64-macos) tool=c++; target=aarch64-macos.${MACOS_MIN_ARM64:-11.0} ;;
  cc-x86_64-macos)   tool=cc;  target=x86_64-macos.${MACOS_MIN_X86_64:-10.15} ;;
  c++-x86_64-macos)  tool=c++; target=x86_64-macos.${MACOS_MIN_X86_64:-10.15} ;;
  *) echo "zig-cc-wrapper: unknown name $me" >&2; exit 2 ;;
esac
args=()
skip=0
for a in "$@"; do
  if [ $skip = 1 ]; then skip=0; continue; fi
  case "$a" in
    -arch) skip=1 ;;                 # '-arch x86_64' conflicts with -target aarch64 (error: unknown target CPU)
    -mmacosx-version-min=*) ;;       # ignored by zig anyway; the -target version decides LC_BUILD_VERSION minos
    -bundle) args+=(-shared) ;;      # zig 0.17.1: 'cc -bundle' segfaults, '-Wl,-bundle' is "unsupported linker arg"
    -Wl,-search_paths_first) ;;      # not needed by zig ld
    -Wl,-stack_size,0x*) args+=("$a") ;;
    -Wl,-stack_size,*)               # ld64 reads the value as hex; zig ld as decimal: make it explicit
      args+=("-Wl,-stack_size,0x${a#-Wl,-stack_size,}") ;;
    *) args+=("$a") ;;
  esac
done
if [ -n "$ZIGCC_LOG" ]; then printf '%q ' "$me" "$@" >> "$ZIGCC_LOG"; echo >> "$ZIGCC_LOG"; fi
# -I: ignore PYTHONPATH/PYTHONHOME, which 2.7's setup.py build leaves pointing at the 2.7 Lib
exec "$ZIGPY" -I -m ziglang "$tool" -target "$target" "${args[@]}"
LAB_FILE_BIN_ZIG_CC_WRAPPER
chmod +x "$LAB/bin/zig-cc-wrapper"
mkdir -p "$LAB/bin"
cat > "$LAB/bin/zig-ar-wrapper" <<'LAB_FILE_BIN_ZIG_AR_WRAPPER'
#!/usr/bin/env bash
LAB=${MACOS_LAB:-/tmp/macos-lab}
ZIGPY=${ZIGPY:-$LAB/venv/bin/python}
export ZIG_GLOBAL_CACHE_DIR=${ZIG_GLOBAL_CACHE_DIR:-$LAB/zig-cache}
case "$(basename "$0")" in *ranlib*) t=ranlib ;; *) t=ar ;; esac
# -I: ignore PYTHONPATH/PYTHONHOME, which 2.7's setup.py build leaves pointing at the 2.7 Lib
exec "$ZIGPY" -I -m ziglang "$t" "$@"
LAB_FILE_BIN_ZIG_AR_WRAPPER
chmod +x "$LAB/bin/zig-ar-wrapper"
mkdir -p "$LAB/sdk-stubs/include"
cat > "$LAB/sdk-stubs/include/util.h" <<'LAB_FILE_SDK_STUBS_INCLUDE_UTIL_H'
/* Minimal <util.h> for cross builds with zig cc, whose macOS headers lack it.
 * Declares the libSystem pty helpers as macOS's own <util.h> does. */
#ifndef _TLSFORGE_STUB_UTIL_H_
#define _TLSFORGE_STUB_UTIL_H_
#include <sys/types.h>
#include <termios.h>
#include <sys/ttycom.h>   /* struct winsize */
#ifdef __cplusplus
extern "C" {
#endif
int openpty(int *, int *, char *, struct termios *, struct winsize *);
int forkpty(int *, char *, struct termios *, struct winsize *);
int login_tty(int);
#ifdef __cplusplus
}
#endif
#endif
LAB_FILE_SDK_STUBS_INCLUDE_UTIL_H
mkdir -p "$LAB/sdk-stubs/Frameworks/CoreFoundation.framework"
cat > "$LAB/sdk-stubs/Frameworks/CoreFoundation.framework/CoreFoundation.tbd" <<'LAB_FILE_SDK_STUBS_FRAMEWORKS_COREFOUNDATION_FRAMEWORK_COREFOUNDATION_TBD'
--- !tapi-tbd
tbd-version:     4
targets:         [ x86_64-macos, arm64-macos, arm64e-macos ]
install-name:    '/System/Library/Frameworks/CoreFoundation.framework/Versions/A/CoreFoundation'
current-version: 1971
exports:
  - targets:         [ x86_64-macos, arm64-macos, arm64e-macos ]
    symbols:         [ _kCFAllocatorDefault, _CFRelease, _CFRetain ]
...
LAB_FILE_SDK_STUBS_FRAMEWORKS_COREFOUNDATION_FRAMEWORK_COREFOUNDATION_TBD
mkdir -p "$LAB/."
cat > "$LAB/config.site-darwin" <<'LAB_FILE_CONFIG_SITE_DARWIN'
# Answers for CPython configure checks that must run a program (AC_RUN_IFELSE /
# AC_CHECK_FILE) and so cannot be done when cross-compiling to macOS. Values are
# what a native configure finds on macOS 11+ (arm64 and x86_64).
ac_cv_file__dev_ptmx=yes
ac_cv_file__dev_ptc=no
ac_cv_buggy_getaddrinfo=no
ac_cv_pthread_is_default=yes
ac_cv_pthread_system_supported=yes
ac_cv_aligned_required=no
ac_cv_have_chflags=yes
ac_cv_have_lchflags=yes
ac_cv_x87_double_rounding=no
ac_cv_posix_semaphores_enabled=yes
ac_cv_broken_sem_getvalue=yes
ac_cv_wchar_t_signed=yes
ac_cv_rshift_extends_sign=yes
ac_cv_broken_nice=no
ac_cv_broken_poll=no
ac_cv_working_tzset=yes
ac_cv_broken_mbstowcs=no
ac_cv_computed_gotos=yes
# 2.7-only checks
ac_cv_have_long_long_format=yes
ac_cv_have_size_t_format=yes
ac_cv_tanh_preserves_zero_sign=yes
ac_cv_broken_sem_getvalue=yes
# Modules left out: their Apple SDK headers are not in zig's macOS libc headers.
py_cv_module__scproxy=n/a                 # SystemConfiguration/SystemConfiguration.h
py_cv_module__testexternalinspection=n/a  # mach/mach_vm.h
# zig 0.17.1 ships the macOS 27 SDK's libSystem.tbd, so link tests find functions that only
# exist on macOS 27+. clang warns 'only available on macOS 27.0' and weak-imports them; an
# unguarded call would jump to NULL on macOS 11-26. CPython calls these two unguarded.
ac_cv_func_dup3=no
ac_cv_func_pipe2=no
LAB_FILE_CONFIG_SITE_DARWIN
mkdir -p "$LAB/patches"
cat > "$LAB/patches/3.13.5-darwin-cross.patch" <<'LAB_FILE_PATCHES_3_13_5_DARWIN_CROSS_PATCH'
What: let configure accept *-apple-darwin* hosts (cross build of macOS from Linux).
Why: configure stops with "cross build not supported for aarch64-apple-darwin"; it only knows
  Linux, Android, Cygwin, iOS, VxWorks, Emscripten and WASI as cross hosts. Darwin sets
  ac_sys_system=Darwin, ac_sys_release from the triple (darwinNN[.x.y], default 20.0.0 = macOS 11)
  so the Darwin/[12][0-9].* cases (no _XOPEN_SOURCE) apply, and _PYTHON_HOST_PLATFORM=darwin-arm64|darwin-x86_64.
  configure is patched by hand alongside configure.ac (the release tarball ships it generated).

--- a/configure.ac
+++ b/configure.ac
@@ -330,6 +330,12 @@
 	*-apple-ios*)
 		ac_sys_system=iOS
 		;;
+	*-apple-darwin*)
+		ac_sys_system=Darwin
+		# what uname -r says there: darwinNN[.x.y] in the triple, else 20.0.0 (macOS 11)
+		ac_sys_release=`echo $host_os | sed -n 's/^darwin\([[0-9]].*\)$/\1/p'`
+		ac_sys_release=${ac_sys_release:-20.0.0}
+		;;
 	*-*-vxworks*)
 	    ac_sys_system=VxWorks
 	    ;;
@@ -344,7 +350,7 @@
 		MACHDEP="unknown"
 		AC_MSG_ERROR([cross build not supported for $host])
 	esac
-	ac_sys_release=
+	test "$ac_sys_system" = Darwin || ac_sys_release=
     else
 	ac_sys_system=`uname -s`
 	if test "$ac_sys_system" = "AIX" \
@@ -771,6 +777,12 @@
 				;;
 		esac
 		;;
+	*-apple-darwin*)
+		case "$host_cpu" in
+			aarch64) _host_ident=arm64 ;;
+			*) _host_ident=$host_cpu ;;
+		esac
+		;;
 	*-*-vxworks*)
 		_host_ident=$host_cpu
 		;;
--- a/configure
+++ b/configure
@@ -4058,6 +4058,12 @@
 	*-apple-ios*)
 		ac_sys_system=iOS
 		;;
+	*-apple-darwin*)
+		ac_sys_system=Darwin
+		# what uname -r says there: darwinNN[.x.y] in the triple, else 20.0.0 (macOS 11)
+		ac_sys_release=`echo $host_os | sed -n 's/^darwin\([0-9].*\)$/\1/p'`
+		ac_sys_release=${ac_sys_release:-20.0.0}
+		;;
 	*-*-vxworks*)
 	    ac_sys_system=VxWorks
 	    ;;
@@ -4072,7 +4078,7 @@
 		MACHDEP="unknown"
 		as_fn_error $? "cross build not supported for $host" "$LINENO" 5
 	esac
-	ac_sys_release=
+	test "$ac_sys_system" = Darwin || ac_sys_release=
     else
 	ac_sys_system=`uname -s`
 	if test "$ac_sys_system" = "AIX" \
@@ -4525,6 +4531,12 @@
 				;;
 		esac
 		;;
+	*-apple-darwin*)
+		case "$host_cpu" in
+			aarch64) _host_ident=arm64 ;;
+			*) _host_ident=$host_cpu ;;
+		esac
+		;;
 	*-*-vxworks*)
 		_host_ident=$host_cpu
 		;;
LAB_FILE_PATCHES_3_13_5_DARWIN_CROSS_PATCH
mkdir -p "$LAB/patches"
cat > "$LAB/patches/2.7.18-darwin-cross.patch" <<'LAB_FILE_PATCHES_2_7_18_DARWIN_CROSS_PATCH'
What: let 2.7 configure accept *-apple-darwin* hosts (cross build of macOS from Linux).
Why: configure stops with "cross build not supported for aarch64-apple-darwin" (only Linux and
  Cygwin are known cross hosts). Darwin sets ac_sys_system=Darwin and ac_sys_release from the triple
  (darwinNN[.x.y], default 20.0.0 = macOS 11); _PYTHON_HOST_PLATFORM is plain "darwin" because
  setup.py compares host_platform == 'darwin'. Darwin 20+ (macOS 11+) is added to the
  no-_XOPEN_SOURCE case, as 3.x does (bpo-41100); 2.7.18 only knew Darwin 6-19.
  Then it stops with "Unexpected output of 'arch' on OSX" (it runs the build machine's
  /usr/bin/arch): a cross build takes MACOSX_DEFAULT_ARCH from the host triple instead.
  configure is patched by hand alongside configure.ac (the release tarball ships it generated).

--- a/configure.ac
+++ b/configure.ac
@@ -340,12 +340,18 @@
 	*-*-cygwin*)
 		ac_sys_system=Cygwin
 		;;
+	*-apple-darwin*)
+		ac_sys_system=Darwin
+		# what uname -r says there: darwinNN[.x.y] in the triple, else 20.0.0 (macOS 11)
+		ac_sys_release=`echo $host_os | sed -n 's/^darwin\([[0-9]].*\)$/\1/p'`
+		ac_sys_release=${ac_sys_release:-20.0.0}
+		;;
 	*)
 		# for now, limit cross builds to known configurations
 		MACHDEP="unknown"
 		AC_MSG_ERROR([cross build not supported for $host])
 	esac
-	ac_sys_release=
+	test "$ac_sys_system" = Darwin || ac_sys_release=
     else
 	ac_sys_system=`uname -s`
 	if test "$ac_sys_system" = "AIX" \
@@ -386,6 +392,10 @@
 	*-*-cygwin*)
 		_host_cpu=
 		;;
+	*-apple-darwin*)
+		# setup.py tests host_platform == 'darwin' (i.e. _PYTHON_HOST_PLATFORM) exactly
+		_host_cpu=
+		;;
 	*)
 		# for now, limit cross builds to known configurations
 		MACHDEP="unknown"
@@ -457,7 +467,7 @@
   # has no effect, don't bother defining them
   Darwin/@<:@6789@:>@.*)
     define_xopen_source=no;;
-  Darwin/1@<:@0-9@:>@.*)
+  Darwin/@<:@12@:>@@<:@0-9@:>@.*)
     define_xopen_source=no;;
   # On AIX 4 and 5.1, mbstate_t is defined only when _XOPEN_SOURCE == 500 but
   # used in wcsnrtombs() and mbsnrtowcs() even if _XOPEN_SOURCE is not defined
@@ -2046,7 +2056,13 @@
     }
     ]])],[ac_osx_32bit=yes],[ac_osx_32bit=no],[ac_osx_32bit=yes])
     
-    if test "${ac_osx_32bit}" = "yes"; then
+    if test "$cross_compiling" = yes; then
+        # cross build: no target /usr/bin/arch to ask, use the host triple's CPU
+        case "$host_cpu" in
+        aarch64) MACOSX_DEFAULT_ARCH="arm64" ;;
+        *) MACOSX_DEFAULT_ARCH="$host_cpu" ;;
+        esac
+    elif test "${ac_osx_32bit}" = "yes"; then
     	case `/usr/bin/arch` in
     	i386) 
     		MACOSX_DEFAULT_ARCH="i386" 
--- a/configure
+++ b/configure
@@ -3287,12 +3287,18 @@
 	*-*-cygwin*)
 		ac_sys_system=Cygwin
 		;;
+	*-apple-darwin*)
+		ac_sys_system=Darwin
+		# what uname -r says there: darwinNN[.x.y] in the triple, else 20.0.0 (macOS 11)
+		ac_sys_release=`echo $host_os | sed -n 's/^darwin\([0-9].*\)$/\1/p'`
+		ac_sys_release=${ac_sys_release:-20.0.0}
+		;;
 	*)
 		# for now, limit cross builds to known configurations
 		MACHDEP="unknown"
 		as_fn_error $? "cross build not supported for $host" "$LINENO" 5
 	esac
-	ac_sys_release=
+	test "$ac_sys_system" = Darwin || ac_sys_release=
     else
 	ac_sys_system=`uname -s`
 	if test "$ac_sys_system" = "AIX" \
@@ -3333,6 +3339,10 @@
 	*-*-cygwin*)
 		_host_cpu=
 		;;
+	*-apple-darwin*)
+		# setup.py tests host_platform == 'darwin' (i.e. _PYTHON_HOST_PLATFORM) exactly
+		_host_cpu=
+		;;
 	*)
 		# for now, limit cross builds to known configurations
 		MACHDEP="unknown"
@@ -3407,7 +3417,7 @@
   # has no effect, don't bother defining them
   Darwin/[6789].*)
     define_xopen_source=no;;
-  Darwin/1[0-9].*)
+  Darwin/[12][0-9].*)
     define_xopen_source=no;;
   # On AIX 4 and 5.1, mbstate_t is defined only when _XOPEN_SOURCE == 500 but
   # used in wcsnrtombs() and mbsnrtowcs() even if _XOPEN_SOURCE is not defined
@@ -8454,7 +8464,13 @@
 fi
 
 
-    if test "${ac_osx_32bit}" = "yes"; then
+    if test "$cross_compiling" = yes; then
+        # cross build: no target /usr/bin/arch to ask, use the host triple's CPU
+        case "$host_cpu" in
+        aarch64) MACOSX_DEFAULT_ARCH="arm64" ;;
+        *) MACOSX_DEFAULT_ARCH="$host_cpu" ;;
+        esac
+    elif test "${ac_osx_32bit}" = "yes"; then
     	case `/usr/bin/arch` in
     	i386)
     		MACOSX_DEFAULT_ARCH="i386"
LAB_FILE_PATCHES_2_7_18_DARWIN_CROSS_PATCH
mkdir -p "$LAB/."
cat > "$LAB/build-openssl.sh" <<'LAB_FILE_BUILD_OPENSSL_SH'
#!/usr/bin/env bash
# usage: build-openssl.sh aarch64|x86_64
set -euo pipefail
LAB=${MACOS_LAB:-/tmp/macos-lab}
arch=$1
case $arch in aarch64) tgt=darwin64-arm64-cc ;; x86_64) tgt=darwin64-x86_64-cc ;; esac
B=$LAB/build/openssl-$arch; P=$LAB/out/openssl-$arch
rm -rf "$B" "$P"; mkdir -p "$B" "$P"
cp -a "$LAB/src/openssl-4.0.3/." "$B/"
cd "$B"
export PATH=$LAB/bin:$PATH
start=$(date +%s)
env CC=cc-$arch-macos CXX=c++-$arch-macos AR=ar-$arch-macos RANLIB=ranlib-$arch-macos \
  nice -n 19 perl ./Configure $tgt no-shared no-module no-tests no-comp no-zlib \
    --prefix="$P" --libdir=lib --openssldir=/private/etc/ssl ${OPENSSL_EXTRA:-} > configure.log 2>&1
nice -n 19 make -j2 MODULESDIR=/opt/tlsforge/ossl-modules build_libs > make.log 2>&1
nice -n 19 make install_dev MODULESDIR=/opt/tlsforge/ossl-modules > install.log 2>&1
echo "openssl $arch: $(( $(date +%s) - start ))s" | tee -a $LAB/timings.txt
LAB_FILE_BUILD_OPENSSL_SH
chmod +x "$LAB/build-openssl.sh"
mkdir -p "$LAB/."
cat > "$LAB/build-zlib.sh" <<'LAB_FILE_BUILD_ZLIB_SH'
#!/usr/bin/env bash
# usage: build-zlib.sh aarch64|x86_64   (static libz.a for the darwin target)
set -euo pipefail
LAB=${MACOS_LAB:-/tmp/macos-lab}
arch=$1
B=$LAB/build/zlib-$arch; P=$LAB/out/zlib-$arch
rm -rf "$B" "$P"; mkdir -p "$B" "$P"
cp -a "$LAB/src/zlib/." "$B/"; cd "$B"
export PATH=$LAB/bin:$PATH
start=$(date +%s)
# no CHOST: zlib's configure would then pick Apple's 'libtool -o' as AR; the Linux path with --static is fine.
CC=cc-$arch-macos AR=ar-$arch-macos RANLIB=ranlib-$arch-macos CFLAGS="-O2 -fPIC" \
  nice -n 19 ./configure --static --prefix="$P" > configure.log 2>&1
nice -n 19 make -j2 libz.a > make.log 2>&1
nice -n 19 make install > install.log 2>&1
echo "zlib $arch: $(( $(date +%s) - start ))s" | tee -a $LAB/timings.txt
LAB_FILE_BUILD_ZLIB_SH
chmod +x "$LAB/build-zlib.sh"
mkdir -p "$LAB/."
cat > "$LAB/build-cpython313.sh" <<'LAB_FILE_BUILD_CPYTHON313_SH'
#!/usr/bin/env bash
# usage: build-cpython313.sh aarch64|x86_64
set -euo pipefail
LAB=${MACOS_LAB:-/tmp/macos-lab}
arch=$1
case $arch in aarch64) host=aarch64-apple-darwin; min=11.0 ;; x86_64) host=x86_64-apple-darwin; min=${MACOS_MIN_X86_64:-10.15} ;; esac
BUILD_PY=${BUILD_PY:-$(ls -td $HOME/.cache/tlsforge/cpython/3.13.5-x86_64-unknown-linux-gnu-*/install/opt/tlsforge/cpython-3.13.5/bin/python3.13 | head -n1)}
echo "build python: $BUILD_PY"
O=$LAB/out/openssl-$arch; Z=$LAB/out/zlib-$arch
B=$LAB/build/cpython-3.13.5-$arch; D=$LAB/out/cpython-3.13.5-$arch
rm -rf "$B" "$D"; mkdir -p "$B" "$D"
cp -a "$LAB/src/cpython-3.13.5-pristine/." "$B/"; cd "$B"
git apply "$LAB/patches/3.13.5-darwin-cross.patch"
cat > Modules/Setup.local <<SETUP
# macOS cross lab: TLS, hashing and zlib compiled into the interpreter.
*static*
_ssl _ssl.c -DUSE_SSL -I$O/include $O/lib/libssl.a $O/lib/libcrypto.a
_hashlib _hashopenssl.c -I$O/include $O/lib/libcrypto.a
zlib zlibmodule.c -I$Z/include $Z/lib/libz.a
SETUP
mkdir -p "$LAB/empty-pkgconfig"
export PATH=$LAB/bin:$PATH
export MACOSX_DEPLOYMENT_TARGET=$min
export CONFIG_SITE=$LAB/config.site-darwin
export PKG_CONFIG_LIBDIR=$LAB/empty-pkgconfig PKG_CONFIG_PATH=
start=$(date +%s)
env CC=cc-$arch-macos CXX=c++-$arch-macos AR=ar-$arch-macos RANLIB=ranlib-$arch-macos \
    READELF=false \
    CFLAGS="-O2 -fstack-protector-strong -Wno-date-time" \
    CPPFLAGS="-I$LAB/sdk-stubs/include -I$Z/include" \
    LDFLAGS="-F$LAB/sdk-stubs/Frameworks -L$Z/lib" \
    LDSHARED="cc-$arch-macos -shared -undefined dynamic_lookup" \
    LDCXXSHARED="c++-$arch-macos -shared -undefined dynamic_lookup" \
  nice -n 19 ./configure --host=$host --build=x86_64-pc-linux-gnu \
    --with-build-python="$BUILD_PY" \
    --prefix=/opt/tlsforge/cpython-3.13.5 \
    --with-openssl="$O" --with-openssl-rpath=no --without-ensurepip \
    ${CPY_EXTRA_CONFIGURE:-} > configure.log 2>&1
t1=$(date +%s); echo "cpython 3.13.5 $arch configure: $((t1-start))s" | tee -a $LAB/timings.txt
nice -n 19 make -j2 > make.log 2>&1 || { echo "make failed, see $B/make.log"; exit 1; }
t2=$(date +%s); echo "cpython 3.13.5 $arch make: $((t2-t1))s" | tee -a $LAB/timings.txt
nice -n 19 make -j2 install DESTDIR="$D" > install.log 2>&1 || { echo "install failed, see $B/install.log"; exit 1; }
echo "cpython 3.13.5 $arch install: $(( $(date +%s)-t2 ))s" | tee -a $LAB/timings.txt
LAB_FILE_BUILD_CPYTHON313_SH
chmod +x "$LAB/build-cpython313.sh"
mkdir -p "$LAB/."
cat > "$LAB/build-cpython27.sh" <<'LAB_FILE_BUILD_CPYTHON27_SH'
#!/usr/bin/env bash
# usage: build-cpython27.sh aarch64|x86_64
set -euo pipefail
LAB=${MACOS_LAB:-/tmp/macos-lab}
arch=$1
case $arch in aarch64) host=aarch64-apple-darwin; min=11.0 ;; x86_64) host=x86_64-apple-darwin; min=${MACOS_MIN_X86_64:-10.15} ;; esac
BUILD_PY27=${BUILD_PY27:-$LAB/buildpy/cpython-2.7.18/bin/python2.7}
O=$LAB/out/openssl-$arch; Z=$LAB/out/zlib-$arch
B=$LAB/build/cpython-2.7.18-$arch; D=$LAB/out/cpython-2.7.18-$arch
rm -rf "$B" "$D"; mkdir -p "$B" "$D"
cp -a "$LAB/src/cpython-2.7.18-pristine/." "$B/"; cd "$B"
git apply "$LAB/patches/2.7.18-darwin-cross.patch"
cat > Modules/Setup.local <<SETUP
# macOS cross lab: TLS, hashing and zlib compiled into the interpreter.
*static*
_ssl _ssl.c -DUSE_SSL -I$O/include $O/lib/libssl.a $O/lib/libcrypto.a
_hashlib _hashopenssl.c -I$O/include $O/lib/libcrypto.a
zlib zlibmodule.c -I$Z/include $Z/lib/libz.a
SETUP
mkdir -p "$LAB/empty-pkgconfig"
# configure looks for python2.7 on PATH to build PYTHON_FOR_BUILD; put the native build first
export PATH=$(dirname "$BUILD_PY27"):$LAB/bin:$PATH
export MACOSX_DEPLOYMENT_TARGET=$min
export CONFIG_SITE=$LAB/config.site-darwin
export PKG_CONFIG_LIBDIR=$LAB/empty-pkgconfig PKG_CONFIG_PATH=
# modern clang (zig 0.17) turns these C89-isms in 2.7 into errors by default
W27="-Wno-error=implicit-function-declaration -Wno-error=int-conversion -Wno-error=incompatible-function-pointer-types -Wno-error=incompatible-pointer-types -Wno-date-time"
start=$(date +%s)
env CC=cc-$arch-macos CXX=c++-$arch-macos AR=ar-$arch-macos RANLIB=ranlib-$arch-macos \
    READELF=false \
    CFLAGS="-O2 -fstack-protector-strong $W27" \
    CPPFLAGS="-I$LAB/sdk-stubs/include -I$Z/include" \
    LDFLAGS="-F$LAB/sdk-stubs/Frameworks -L$Z/lib" \
    LDSHARED="cc-$arch-macos -shared -undefined dynamic_lookup" \
    LDCXXSHARED="c++-$arch-macos -shared -undefined dynamic_lookup" \
  nice -n 19 ./configure --host=$host --build=x86_64-pc-linux-gnu \
    --prefix=/opt/tlsforge/cpython-2.7.18 --with-ensurepip=no --disable-toolbox-glue \
    ${CPY_EXTRA_CONFIGURE:-} > configure.log 2>&1
t1=$(date +%s); echo "cpython 2.7.18 $arch configure: $((t1-start))s" | tee -a $LAB/timings.txt
nice -n 19 make -j2 > make.log 2>&1 || { echo "make failed, see $B/make.log"; exit 1; }
sed -n '/necessary bits to build these modules/,/^running build_scripts/p' make.log > setup-py-missing.txt
t2=$(date +%s); echo "cpython 2.7.18 $arch make: $((t2-t1))s" | tee -a $LAB/timings.txt
# make install byte-compiles with PYTHON_FOR_BUILD, whose PYTHONPATH starts with build/lib.darwin-2.7:
# the native python2.7 then imports the Mach-O _struct.so from there ("invalid ELF header").
# Give it a PYTHONPATH with only _sysconfigdata.py and the pure-Python Lib instead.
mkdir -p build/sysconfigdata-only
cp build/lib.*/_sysconfigdata.py build/sysconfigdata-only/
nice -n 19 make -j2 install DESTDIR="$D" \
  "PYTHON_FOR_BUILD=_PYTHON_PROJECT_BASE=$B _PYTHON_HOST_PLATFORM=darwin PYTHONPATH=$B/build/sysconfigdata-only:$B/Lib:$B/Lib/plat-darwin $(basename "$BUILD_PY27")" \
  > install.log 2>&1 || { echo "install failed, see $B/install.log"; exit 1; }
echo "cpython 2.7.18 $arch install: $(( $(date +%s)-t2 ))s" | tee -a $LAB/timings.txt
LAB_FILE_BUILD_CPYTHON27_SH
chmod +x "$LAB/build-cpython27.sh"
mkdir -p "$LAB/."
cat > "$LAB/inspect_macho.py" <<'LAB_FILE_INSPECT_MACHO_PY'
#!/usr/bin/env python3
"""Print Mach-O facts: cputype, filetype, minos/sdk, dylibs, code signature."""
import sys, struct
from macholib.MachO import MachO
from macholib import mach_o as M
CPU = {M.CPU_TYPE_NAMES.get(k, k): k for k in M.CPU_TYPE_NAMES} if hasattr(M,'CPU_TYPE_NAMES') else {}
def ver(v): return f"{v>>16}.{(v>>8)&0xff}.{v&0xff}"
def facts(path):
    m = MachO(path)
    out = []
    for h in m.headers:
        hdr = h.header
        cpu = M.CPU_TYPE_NAMES.get(hdr.cputype, hdr.cputype)
        ft = M.MH_FILETYPE_SHORTNAMES.get(hdr.filetype, hdr.filetype)
        d = {"cpu": cpu, "filetype": ft, "minos": None, "sdk": None, "platform": None,
             "dylibs": [], "codesig": False, "rpaths": [], "undefined_dynamic": bool(hdr.flags & 0x1) is False}
        for lc, cmd, data in h.commands:
            n = lc.cmd
            if n == 0x32:  # LC_BUILD_VERSION
                d["platform"], d["minos"], d["sdk"] = cmd.platform, ver(cmd.minos), ver(cmd.sdk)
            elif n in (0x24, 0x25):  # LC_VERSION_MIN_MACOSX / IPHONEOS
                d["minos"], d["sdk"] = ver(cmd.version), ver(cmd.sdk)
                d["platform"] = "LC_VERSION_MIN"
            elif n in (0xc, 0x80000018, 0x1f, 0x80000023):  # LOAD_DYLIB, WEAK, REEXPORT, LAZY? 
                d["dylibs"].append(data.rstrip(b"\0").decode())
            elif n == 0x1d:
                d["codesig"] = True
            elif n == 0x8000001c:
                d["rpaths"].append(data.rstrip(b"\0").decode())
        out.append(d)
    return out
bad = 0
for p in sys.argv[1:]:
    for d in facts(p):
        libs = d["dylibs"]
        ok = all(l.startswith(("/usr/lib/", "/System/")) for l in libs) and not any(("libssl" in l or "libcrypto" in l) for l in libs)
        bad |= not ok
        print(f"{p}: cpu={d['cpu']} type={d['filetype']} platform={d['platform']} minos={d['minos']} sdk={d['sdk']} codesig={d['codesig']} rpaths={d['rpaths']} dylibs={libs} {'OK' if ok else 'BAD-DYLIB'}")
sys.exit(bad)
LAB_FILE_INSPECT_MACHO_PY
chmod +x "$LAB/inspect_macho.py"
mkdir -p "$LAB/."
cat > "$LAB/inspect_deep.py" <<'LAB_FILE_INSPECT_DEEP_PY'
#!/usr/bin/env python3
"""Deeper Mach-O checks with lief + a hand-rolled code-signature verifier.
usage: inspect_deep.py EXE [EXT.so ...]"""
import sys, struct, hashlib, lief
lief.logging.disable()

def verify_codesig(path):
    b = lief.MachO.parse(path).at(0)
    if not b.has_code_signature:
        return "none"
    cs = b.code_signature
    data = open(path, "rb").read()
    off, size = cs.data_offset, cs.data_size
    blob = data[off:off+size]
    magic, length, count = struct.unpack(">III", blob[:12])
    assert magic == 0xfade0cc0, hex(magic)
    res = []
    for i in range(count):
        typ, boff = struct.unpack(">II", blob[12+8*i:20+8*i])
        m = struct.unpack(">I", blob[boff:boff+4])[0]
        if m != 0xfade0c02:
            continue
        cd = blob[boff:]
        (magic, length, version, flags, hashOffset, identOffset, nSpecial, nCode, codeLimit,
         hashSize, hashType, platform, pageSizeLog2) = struct.unpack(">IIIIIIIIIBBBB", cd[:40])
        ident = cd[identOffset:cd.index(b"\0", identOffset)].decode()
        ps = 1 << pageSizeLog2
        bad = 0
        for p in range(nCode):
            chunk = data[p*ps:min((p+1)*ps, codeLimit)]
            h = hashlib.sha256(chunk).digest() if hashType == 2 else hashlib.sha1(chunk).digest()
            if h[:hashSize] != cd[hashOffset+p*hashSize:hashOffset+(p+1)*hashSize]:
                bad += 1
        fl = []
        if flags & 0x2: fl.append("adhoc")
        if flags & 0x20000: fl.append("linker-signed")
        res.append(f"CodeDirectory v{version:#x} ident={ident} flags={'|'.join(fl) or hex(flags)} "
                   f"hash={'sha256' if hashType==2 else hashType} pages={nCode} bad_pages={bad}")
    return "; ".join(res)

for path in sys.argv[1:]:
    b = lief.MachO.parse(path).at(0)
    print(f"== {path}")
    print("  header flags:", [str(f).split('.')[-1] for f in b.header.flags_list])
    if b.has_main_command:
        print(f"  LC_MAIN stacksize={b.main_command.stack_size:#x}")
    print("  codesig:", verify_codesig(path))
    exported = {s.name for s in b.exported_symbols}
    if b.header.file_type == lief.MachO.Header.FILE_TYPE.EXECUTE:
        for want in ("_Py_Initialize", "_PyLong_FromLong", "_PyInit__ssl", "_PyInit__hashlib", "_PyInit_zlib", "_init_ssl", "_init_hashlib", "_initzlib"):
            print(f"  exports {want}: {want in exported}")
        ossl = sorted(s for s in exported if s.startswith(("_SSL_", "_EVP_", "_OPENSSL_", "_deflate")))
        print(f"  exported OpenSSL/zlib symbols: {len(ossl)} e.g. {ossl[:3]}")
        print(f"  total exported: {len(exported)}")
    else:
        und = [s for s in b.symbols if s.is_external and not s.has_export_info and s.name.startswith("_Py")]
        ords = {}
        for bi in b.bindings:
            if bi.has_symbol and bi.symbol.name.startswith("_Py"):
                ords.setdefault(bi.library_ordinal, 0); ords[bi.library_ordinal] += 1
        print(f"  undefined _Py* symbols: {len(und)}; bind library ordinals for them: {ords} (-2 = flat/dynamic_lookup)")
        ids = [c.name for c in b.commands if isinstance(c, lief.MachO.DylibCommand) and c.command == lief.MachO.LoadCommand.TYPE.ID_DYLIB]
        print(f"  install name (LC_ID_DYLIB): {ids}")
LAB_FILE_INSPECT_DEEP_PY
chmod +x "$LAB/inspect_deep.py"
for a in aarch64 x86_64; do for t in cc c++; do ln -sf zig-cc-wrapper "$LAB/bin/$t-$a-macos"; done; ln -sf zig-ar-wrapper "$LAB/bin/ar-$a-macos"; ln -sf zig-ar-wrapper "$LAB/bin/ranlib-$a-macos"; done
# ---- main: run from the lab dir (default /tmp/macos-lab) ----
cd "$LAB"
if [ $# -gt 0 ]; then archs=("$@"); else archs=(aarch64 x86_64); fi
newest() { # newest of the given dirs that holds $1 (configure for sources, .tlsforge-complete for builds)
  local marker=$1; shift
  ls -td "$@" 2>/dev/null | while read -r d; do [ -e "$d/$marker" ] && { echo "$d"; break; }; done
}
[ -x venv/bin/python ] || python3 -m venv venv
venv/bin/python -c 'import ziglang, macholib, lief' 2>/dev/null || venv/bin/pip install -q ziglang macholib lief
echo "zig $(venv/bin/python -m ziglang version)"
mkdir -p src buildpy
[ -d src/cpython-3.13.5-pristine ] || cp -a "$(newest configure ~/.cache/tlsforge/src/cpython-3.13.5-*)" src/cpython-3.13.5-pristine
[ -d src/cpython-2.7.18-pristine ] || cp -a "$(newest configure ~/.cache/tlsforge/src/cpython-2.7.18-*)" src/cpython-2.7.18-pristine
[ -d src/zlib ] || cp -a "$(newest configure ~/.cache/tlsforge/src/zlib-*)" src/zlib
[ -d src/openssl-4.0.3 ] || cp -a "$(ls -d ~/.cargo/registry/src/*/openssl-src-400*/openssl | tail -n1)" src/openssl-4.0.3
# native build pythons, copied in so a cache cleanup elsewhere cannot remove them mid-build
if [ ! -x buildpy/cpython-3.13.5/bin/python3.13 ]; then
  d=$(newest .tlsforge-complete ~/.cache/tlsforge/cpython/3.13.5-x86_64-unknown-linux-gnu-*)
  cp -a "$d/install/opt/tlsforge/cpython-3.13.5" buildpy/
fi
if [ ! -x buildpy/cpython-2.7.18/bin/python2.7 ]; then
  d=$(newest .tlsforge-complete ~/.cache/tlsforge/cpython/2.7.18-x86_64-unknown-linux-gnu-*)
  cp -a "$d/install/opt/tlsforge/cpython-2.7.18" buildpy/
fi
export BUILD_PY=$LAB/buildpy/cpython-3.13.5/bin/python3.13
export BUILD_PY27=$LAB/buildpy/cpython-2.7.18/bin/python2.7
for a in "${archs[@]}"; do
  ./build-openssl.sh "$a"
  ./build-zlib.sh "$a"
  ./build-cpython313.sh "$a"
  R=out/cpython-3.13.5-$a/opt/tlsforge/cpython-3.13.5
  venv/bin/python inspect_macho.py $R/bin/python3.13 $R/lib/python3.13/lib-dynload/*.so > facts-3.13.5-$a.txt
  venv/bin/python inspect_deep.py $R/bin/python3.13 $R/lib/python3.13/lib-dynload/_json.cpython-313-darwin.so > deep-3.13.5-$a.txt 2>/dev/null
  if [ "${PY27:-1}" = 1 ]; then
    if ./build-cpython27.sh "$a"; then
      R=out/cpython-2.7.18-$a/opt/tlsforge/cpython-2.7.18
      venv/bin/python inspect_macho.py $R/bin/python2.7 $R/lib/python2.7/lib-dynload/*.so > facts-2.7.18-$a.txt
      venv/bin/python inspect_deep.py $R/bin/python2.7 $R/lib/python2.7/lib-dynload/_json.so > deep-2.7.18-$a.txt 2>/dev/null
    else
      echo "2.7.18 $a failed"
    fi
  fi
done
echo "done; Mach-O facts in $LAB/facts-*.txt and deep-*.txt"

