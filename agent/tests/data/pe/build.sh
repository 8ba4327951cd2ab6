#!/bin/sh
# Rebuilds the PE fixtures of agent/tests/pe_enrich.rs and prints what an
# independent reader (oracle.py: Python's struct module, no PE library)
# finds in them; the test's expected values are that output, and the
# version strings are the ones written in version.rc.
#
# Needs mingw-w64 (x86_64-w64-mingw32-gcc, -windres, -dlltool), LLVM's
# llvm-dlltool, and rust-lld (in every Rust toolchain) for the PE32 link.
#
#   fixture64.exe  PE32+, linked by GNU ld
#   fixture32.exe  PE32, linked by lld-link
#
# Both import KERNEL32.dll!ExitProcess, GetTickCount by name and
# RsTest.OCX!RS_Named by name and ordinal 7 (rstest.def) without one,
# and carry version.rc: its first translation is German (0407, 1252), and
# an English table with other values must not be read.
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
lld=$(ls "$(rustc --print sysroot)"/lib/rustlib/*/bin/rust-lld | head -n 1)
dlltool=$(command -v llvm-dlltool || ls /usr/lib/llvm*/bin/llvm-dlltool | head -n 1)

x86_64-w64-mingw32-dlltool -d rstest.def -l "$tmp/librstest.a"
x86_64-w64-mingw32-windres -c 1252 version.rc -O coff -o "$tmp/version64.o"
x86_64-w64-mingw32-gcc -Os -nostdlib -s -e start -Wl,--no-insert-timestamp \
    -o fixture64.exe fixture.c "$tmp/version64.o" "$tmp/librstest.a" -lkernel32

printf 'LIBRARY "KERNEL32.dll"\nEXPORTS\nGetTickCount@0\nExitProcess@4\n' >"$tmp/k32.def"
"$dlltool" -k -m i386 -d "$tmp/k32.def" -l "$tmp/k32.lib"
"$dlltool" -m i386 -d rstest.def -l "$tmp/rstest32.lib"
x86_64-w64-mingw32-windres -F pe-i386 -c 1252 version.rc -O coff -o "$tmp/version32.o"
x86_64-w64-mingw32-gcc -m32 -Os -c fixture.c -o "$tmp/fixture32.o"
"$lld" -flavor link /machine:x86 /safeseh:no /nodefaultlib /brepro \
    /subsystem:console /entry:start /out:fixture32.exe \
    "$tmp/fixture32.o" "$tmp/version32.o" "$tmp/k32.lib" "$tmp/rstest32.lib"

python3 oracle.py fixture32.exe fixture64.exe
