// The quickstart scenario in Go: fetch the home page, post an order to
// the echo route and check it comes back. Built with GOOS=wasip1
// -buildmode=c-shared and made a component by scripts/build-plugins.sh;
// abi.go holds the hand-written bindings.
package main

import (
	"encoding/json"
	"fmt"
)

var thinkMs uint32

func main() {}

func initScenario(params string) string {
	var p struct {
		ThinkMs uint32 `json:"think_ms"`
	}
	if params != "" && params != "null" {
		if err := json.Unmarshal([]byte(params), &p); err != nil {
			return "params: " + err.Error()
		}
	}
	thinkMs = p.ThinkMs
	return ""
}

func iteration() string {
	home, err := send(request{method: "GET", url: "/", name: "home", discardBody: true, discardHeaders: true})
	if err != "" {
		return "home: " + err
	}
	check("home status is 200", home.status == 200)
	order := fmt.Sprintf(`{"vu":%d,"item":%d}`, vuID(), vuIteration())
	echoed, err := send(request{
		method: "POST", url: "/echo", name: "order", discardHeaders: true,
		headers: []header{{"content-type", "application/json"}},
		body:    []byte(order),
	})
	if err != "" {
		return "order: " + err
	}
	check("order echoed", echoed.status == 200 && string(echoed.body) == order)
	if thinkMs > 0 {
		vuSleep(thinkMs)
	}
	return ""
}
