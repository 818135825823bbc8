#!/usr/bin/env bash
# Lists the panic call sites that survive optimization in the nostd-check binary: a count per
# function, then every call site with the innermost source line of this project that it was
# inlined from (when `addr2line` or `llvm-addr2line` is installed).
#
# The normal build cannot link while any remain (its panic handler is unlinkable), so this builds
# with `--features list-panics` (a plain-loop handler) and line tables. Needs the llvm-tools
# component (`rustup component add llvm-tools`). Run from anywhere; `CARGO_TARGET_DIR` is honored.
set -euo pipefail
cd "$(dirname "$0")"

host=$(rustc -vV | sed -n 's/^host: //p')
objdump="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-objdump"
if [ ! -x "$objdump" ]; then
  echo "panic-sites.sh: $objdump not found (rustup component add llvm-tools)" >&2
  exit 2
fi
addr2line=$(command -v addr2line || command -v llvm-addr2line || true)
CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
  cargo build --release --target thumbv7em-none-eabihf --features list-panics -q
bin="${CARGO_TARGET_DIR:-target}/thumbv7em-none-eabihf/release/nostd-check"

# A call site is a `bl`/`b.w` into a core function whose name says panic or fail
# (panic_bounds_check, slice_index_fail, len_mismatch_fail, panic_fmt, unwrap_failed, ...), made
# from outside core itself. Printed as `address<TAB>function<TAB>callee`.
sites=$("$objdump" -d --demangle --no-show-raw-insn "$bin" |
  sed -e 's/\$LT\$/</g; s/\$GT\$/>/g; s/\$u20\$/ /g; s/\$C\$/,/g; s/\$RF\$/\&/g; s/\.\./::/g; s/<_</<</g' \
    -e 's/::h[0-9a-f]\{16\}//g' |
  awk '
    /^[0-9a-f]+ <.*>:$/ { fn = $0; sub(/^[0-9a-f]+ </, "", fn); sub(/>:$/, "", fn); next }
    /\tb(l|\.w)?\t/ && /<core::[^>]*(panic|fail)[^>]*>/ && fn !~ /^core::/ {
      addr = $1; sub(/:$/, "", addr)
      callee = $0; sub(/.*<core::/, "core::", callee); sub(/>.*/, "", callee)
      printf "%s\t%s\t%s\n", addr, fn, callee
    }')

if [ -z "$sites" ]; then
  echo "0 panic call sites"
  exit 0
fi
echo "$(printf '%s\n' "$sites" | wc -l) panic call site(s), per function:"
printf '%s\n' "$sites" | cut -f2 | sort | uniq -c | sort -rn
echo "Each call site (the innermost source line of this project it was inlined from):"
printf '%s\n' "$sites" | while IFS=$'\t' read -r addr fn callee; do
  where="?"
  if [ -n "$addr2line" ]; then
    # Frames innermost first, as `function` / `file:line` pairs; skip core's own.
    where=$("$addr2line" -i -f -C -e "$bin" "0x$addr" | paste - - |
      awk -F'\t' '$2 !~ /^\/rustc\// {
        if (match($2, /(flow-core|flow-macros|examples)\/.*/)) $2 = substr($2, RSTART)
        print $2 " (" $1 ")"; exit
      }')
  fi
  printf '  %s: %s -> %s\n' "${where:-?}" "$fn" "$callee"
done
