// A Quern producer with redigo: no SDK, just QPUSH sent with Do (here
// pipelined with Send, Flush and Receive, one round trip for all the jobs).
//
//	REDIS_URL=redis://localhost:6379 QUEUE=emails go run ./producer '{"to": "ada@example.com"}' ...
//
// In a module of your own: go get github.com/gomodule/redigo
package main

import (
	"fmt"
	"log"
	"os"

	"github.com/gomodule/redigo/redis"
)

func env(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}

func main() {
	queue := env("QUEUE", "emails")
	conn, err := redis.DialURL(env("REDIS_URL", "redis://localhost:6379"))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	payloads := os.Args[1:]
	for _, payload := range payloads {
		// RETRIES: failed attempts retried before the job goes to the
		// dead-letter queue; LEASE: how long a worker may hold it before
		// it comes back.
		if err := conn.Send("QPUSH", queue, payload, "RETRIES", 3, "LEASE", 30000); err != nil {
			log.Fatal(err)
		}
	}
	if err := conn.Flush(); err != nil {
		log.Fatal(err)
	}
	for range payloads {
		// A refused push comes back as a redis.Error with the server's message.
		id, err := redis.Int64(conn.Receive())
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("pushed job %d\n", id)
	}
}
