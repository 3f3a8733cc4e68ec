#!/usr/bin/env python3
"""Adds `cabi_realloc_adapter` to a Go wasip1 core module (as WAT text).

The WASI preview1 adapter allocates its state on the first WASI call,
which Go's runtime makes while it starts, before any Go function may
run. wit-component gives the adapter a main-module export named
`cabi_realloc_adapter` when there is one; this one bump-allocates from a
static Go array (found by its marker in the data section), which Go never
uses for its heap. Usage: go-adapter-realloc.py core.wasm core.wat out.wat
"""
import sys

MARKER = b"loadtest-arena-1"
ARENA = 512 << 10


def leb(b, i, signed=False):
    r = s = 0
    while True:
        x = b[i]
        i += 1
        r |= (x & 0x7F) << s
        s += 7
        if x < 0x80:
            if signed and x & 0x40:
                r -= 1 << s
            return r, i


def arena_address(wasm):
    i = 8
    while i < len(wasm):
        sid = wasm[i]
        size, i = leb(wasm, i + 1)
        end = i + size
        if sid == 11:
            n, j = leb(wasm, i)
            for _ in range(n):
                flags, j = leb(wasm, j)
                if flags != 0 or wasm[j] != 0x41:
                    raise SystemExit("unexpected data segment form")
                offset, j = leb(wasm, j + 1, signed=True)
                j += 1  # end
                length, j = leb(wasm, j)
                k = wasm[j : j + length].find(MARKER)
                if k >= 0:
                    return offset + k
                j += length
        i = end
    raise SystemExit("the adapter arena's marker is not in the module's data")


def main():
    wasm_path, wat_path, out_path = sys.argv[1:]
    base = arena_address(open(wasm_path, "rb").read())
    start, limit = base + len(MARKER), base + ARENA
    wat = open(wat_path).read().rstrip()
    assert wat.endswith(")")
    extra = f"""
  (global $lt_arena_next (mut i32) (i32.const {start}))
  (func $lt_cabi_realloc_adapter (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $p i32)
    global.get $lt_arena_next
    local.get $align
    i32.add
    i32.const 1
    i32.sub
    i32.const 0
    local.get $align
    i32.sub
    i32.and
    local.set $p
    local.get $p
    local.get $size
    i32.add
    i32.const {limit}
    i32.gt_u
    if
      unreachable
    end
    local.get $p
    local.get $size
    i32.add
    global.set $lt_arena_next
    local.get $old
    if
      local.get $p
      local.get $old
      local.get $old_size
      memory.copy
    end
    local.get $p)
  (export "cabi_realloc_adapter" (func $lt_cabi_realloc_adapter))
"""
    open(out_path, "w").write(wat[:-1] + extra + ")\n")


main()
