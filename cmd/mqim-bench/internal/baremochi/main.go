// Command baremochi is the reference broker of mqim-bench: mochi v2 with
// its default options and the allow-all auth hook, nothing else, on one TCP
// listener. It runs as a child process of the benchmark so that its CPU
// time and memory are measured the same way as mqim's and Mosquitto's.
//
//	baremochi -addr 127.0.0.1:1884
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:1883", "TCP listener address")
	flag.Parse()

	server := mqtt.New(nil)
	if err := server.AddHook(new(auth.AllowHook), nil); err != nil {
		fail(err)
	}
	if err := server.AddListener(listeners.NewTCP(listeners.Config{ID: "t1", Address: *addr})); err != nil {
		fail(err)
	}
	if err := server.Serve(); err != nil {
		fail(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	_ = server.Close()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "baremochi:", err)
	os.Exit(1)
}
