// The canonical ABI of the loadtest:scenario world by hand: Go has no
// component bindings generator for GOOS=wasip1, so imports are
// //go:wasmimport functions taking the flattened core values, and
// exports are //go:wasmexport functions returning a pointer to their
// result. Addresses are 32-bit in wasm linear memory.
package main

import "unsafe"

//go:wasmimport loadtest:scenario/http@0.1.0 send
func rawSend(methodPtr, methodLen, urlPtr, urlLen, hdrPtr, hdrLen,
	bodySome, bodyPtr, bodyLen, nameSome, namePtr, nameLen,
	timeoutSome, timeoutMs, discardBody, discardHeaders, ret uint32)

//go:wasmimport loadtest:scenario/metrics@0.1.0 check
func rawCheck(namePtr, nameLen, passed uint32)

//go:wasmimport loadtest:scenario/vu@0.1.0 id
func vuID() uint32

//go:wasmimport loadtest:scenario/vu@0.1.0 iteration
func vuIteration() uint64

//go:wasmimport loadtest:scenario/vu@0.1.0 sleep
func vuSleep(ms uint32)

// Memory for the WASI adapter's state. The adapter allocates it during
// the runtime's first WASI call, before any Go code may run, so a small
// wasm function added after the build (cabi_realloc_adapter) hands it out
// from here; the marker lets the build find this array's address.
var adapterArena = [512 << 10]byte{'l', 'o', 'a', 'd', 't', 'e', 's', 't', '-', 'a', 'r', 'e', 'n', 'a', '-', '1'}

// Memory the host allocated in this instance during a call (strings and
// lists it returns). Go's collector does not move heap objects; holding
// them here keeps them alive until the export that asked for them ends.
var lent [][]byte

//go:wasmexport cabi_realloc
func cabiRealloc(oldPtr, oldSize, align, newSize uint32) uint32 {
	if newSize == 0 {
		return align
	}
	buf := make([]byte, newSize+align)
	lent = append(lent, buf)
	addr := uint32(uintptr(unsafe.Pointer(&buf[0])))
	addr = (addr + align - 1) &^ (align - 1)
	if oldPtr != 0 && oldSize > 0 {
		copy(unsafe.Slice((*byte)(unsafe.Pointer(uintptr(addr))), oldSize),
			unsafe.Slice((*byte)(unsafe.Pointer(uintptr(oldPtr))), oldSize))
	}
	return addr
}

func addr(b []byte) uint32 {
	if len(b) == 0 {
		return 1
	}
	return uint32(uintptr(unsafe.Pointer(&b[0])))
}

// bytesAt copies `n` bytes the host wrote at `ptr`.
func bytesAt(ptr, n uint32) []byte {
	if n == 0 {
		return nil
	}
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(uintptr(ptr))), n)...)
}

func u32At(p uint32) uint32 { return *(*uint32)(unsafe.Pointer(uintptr(p))) }

type header struct{ name, value string }

type request struct {
	method, url, name string
	headers           []header
	body              []byte
	discardBody       bool
	discardHeaders    bool
}

type response struct {
	status uint16
	body   []byte
}

// send returns the response, or the host's error as text.
func send(r request) (response, string) {
	method, url, name := []byte(r.method), []byte(r.url), []byte(r.name)
	// tuple<string, string>: four 32-bit words each.
	hdrs := make([]uint32, 0, 4*len(r.headers))
	keep := make([][]byte, 0, 2*len(r.headers))
	for _, h := range r.headers {
		n, v := []byte(h.name), []byte(h.value)
		keep = append(keep, n, v)
		hdrs = append(hdrs, addr(n), uint32(len(n)), addr(v), uint32(len(v)))
	}
	var hdrPtr uint32 = 4
	if len(hdrs) > 0 {
		hdrPtr = uint32(uintptr(unsafe.Pointer(&hdrs[0])))
	}
	var bodySome uint32
	if r.body != nil {
		bodySome = 1
	}
	// result<response, error>: tag at 0, payload at 8 (response aligns to 8).
	ret := make([]uint64, 5)
	retPtr := uint32(uintptr(unsafe.Pointer(&ret[0])))
	rawSend(addr(method), uint32(len(method)), addr(url), uint32(len(url)),
		hdrPtr, uint32(len(r.headers)),
		bodySome, addr(r.body), uint32(len(r.body)),
		1, addr(name), uint32(len(name)),
		0, 0, b2u(r.discardBody), b2u(r.discardHeaders), retPtr)
	keepAlive(method, url, name, r.body, keep, hdrs, ret)
	if *(*uint8)(unsafe.Pointer(uintptr(retPtr))) == 0 {
		status := *(*uint16)(unsafe.Pointer(uintptr(retPtr + 8)))
		return response{status: status, body: bytesAt(u32At(retPtr+20), u32At(retPtr+24))}, ""
	}
	kinds := []string{"invalid request", "connect", "timeout", "transport"}
	tag := *(*uint8)(unsafe.Pointer(uintptr(retPtr + 8)))
	msg := kinds[tag%4]
	if tag != 2 {
		msg += ": " + string(bytesAt(u32At(retPtr+12), u32At(retPtr+16)))
	}
	return response{}, msg
}

func check(name string, passed bool) {
	b := []byte(name)
	rawCheck(addr(b), uint32(len(b)), b2u(passed))
	keepAlive(b)
}

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

//go:noinline
func keepAlive(...any) {}

// The result<_, string> an export returns: tag, then the string.
var result [3]uint32
var resultText []byte

func finish(err string) uint32 {
	lent = nil
	result = [3]uint32{}
	if err != "" {
		resultText = []byte(err)
		result = [3]uint32{1, addr(resultText), uint32(len(resultText))}
	}
	return uint32(uintptr(unsafe.Pointer(&result[0])))
}

//go:wasmexport init
func exportInit(ptr, n uint32) uint32 {
	keepAlive(&adapterArena)
	return finish(initScenario(string(bytesAt(ptr, n))))
}

//go:wasmexport iteration
func exportIteration() uint32 {
	return finish(iteration())
}
