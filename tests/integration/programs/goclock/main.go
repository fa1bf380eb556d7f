// A Go HTTP server for the clock-skew test: Go reads the clock through the vDSO, so
// libfaketime's LD_PRELOAD cannot move the time in its Date header.
package main

import (
	"flag"
	"net/http"
	"time"
)

func main() {
	address := flag.String("http", "127.0.0.1:0", "host:port to serve on")
	lifetime := flag.Duration("lifetime", 10*time.Minute, "stop by itself after this long")
	flag.Parse()
	time.AfterFunc(*lifetime, func() { panic("lifetime over") })
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	if err := http.ListenAndServe(*address, nil); err != nil {
		panic(err)
	}
}
