// The quickstart scenario in Go: log in (when params.user is set), fetch
// the home page, post an order to the echo route with the session's token
// and check it comes back. Built with GOOS=wasip1
// -buildmode=c-shared and made a component by scripts/build-plugins.sh;
// abi.go holds the hand-written bindings.
package main

import (
	"encoding/json"
	"fmt"
)

var thinkMs uint32

// "Bearer <token>" once logged in.
var auth string

func main() {}

func initScenario(params string) string {
	var p struct {
		ThinkMs uint32 `json:"think_ms"`
		User    string `json:"user"`
	}
	if params != "" && params != "null" {
		if err := json.Unmarshal([]byte(params), &p); err != nil {
			return "params: " + err.Error()
		}
	}
	thinkMs = p.ThinkMs
	if p.User != "" {
		return logIn(fmt.Sprintf("%s-%d", p.User, vuID()))
	}
	return ""
}

func logIn(user string) string {
	body, _ := json.Marshal(map[string]string{"user": user})
	res, err := send(request{
		method: "POST", url: "/login", name: "login", discardHeaders: true,
		headers: []header{{"content-type", "application/json"}},
		body:    body,
	})
	if err != "" {
		return "login: " + err
	}
	var session struct {
		Token string `json:"token"`
	}
	ok := res.status == 200 && json.Unmarshal(res.body, &session) == nil && session.Token != ""
	check("logged in", ok)
	if !ok {
		return fmt.Sprintf("login as %s: status %d", user, res.status)
	}
	auth = "Bearer " + session.Token
	return ""
}

func iteration() string {
	home, err := send(request{method: "GET", url: "/", name: "home", discardBody: true, discardHeaders: true})
	if err != "" {
		return "home: " + err
	}
	check("home status is 200", home.status == 200)
	order := fmt.Sprintf(`{"vu":%d,"item":%d}`, vuID(), vuIteration())
	headers := []header{{"content-type", "application/json"}}
	if auth != "" {
		headers = append(headers, header{"authorization", auth})
	}
	echoed, err := send(request{
		method: "POST", url: "/echo", name: "order", discardHeaders: true,
		headers: headers,
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
