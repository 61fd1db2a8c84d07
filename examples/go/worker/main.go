// A Quern worker with redigo: pull, handle, ack, or fail with the error.
//
// Blocking pulls get a connection of their own; acks, fails and lease
// renewals go through a pool. Long jobs keep their lease with QTOUCH. On
// SIGTERM or SIGINT the worker stops pulling, hands an unfinished job back
// with QFAIL ... SILENT (the attempt is not counted), and exits 0.
//
//	REDIS_URL=redis://localhost:6379 QUEUE=emails go run ./worker
//
// In a module of your own: go get github.com/gomodule/redigo
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/gomodule/redigo/redis"
)

// handle is your work. Return an error to fail the job; stop early when ctx
// is done (the worker is shutting down) and the job is handed back.
func handle(ctx context.Context, payload []byte) error {
	var job struct {
		Fail    bool    `json:"fail"`
		Seconds float64 `json:"seconds"`
	}
	if err := json.Unmarshal(payload, &job); err != nil {
		return err
	}
	if job.Fail {
		return fmt.Errorf("cannot handle %s", payload)
	}
	select {
	case <-time.After(time.Duration(job.Seconds * float64(time.Second))):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

var (
	url     = env("REDIS_URL", "redis://localhost:6379")
	queue   = env("QUEUE", "emails")
	leaseMs = envInt("LEASE_MS", 30000)
)

// For QACK, QFAIL and QTOUCH. TestOnBorrow replaces a connection the server
// closed (a restart) before it is used.
var pool = &redis.Pool{
	MaxIdle:      2,
	Dial:         func() (redis.Conn, error) { return redis.DialURL(url) },
	TestOnBorrow: func(c redis.Conn, _ time.Time) error { _, err := c.Do("PING"); return err },
}

// command sends one command through the pool.
func command(name string, args ...interface{}) (interface{}, error) {
	c := pool.Get()
	defer c.Close()
	return c.Do(name, args...)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	var puller redis.Conn
	for ctx.Err() == nil {
		if puller == nil {
			c, err := redis.DialURL(url)
			if err != nil {
				log.Printf("connect: %v", err)
				time.Sleep(time.Second)
				continue
			}
			puller = c
		}
		// BLOCK 1000: wait up to a second for a job, so that a SIGTERM is
		// noticed within a second. Each job is [queue, id, payload, attempt].
		jobs, err := redis.Values(puller.Do("QPULL", queue, "BLOCK", 1000, "LEASE", leaseMs))
		if errors.Is(err, redis.ErrNil) {
			continue // no job within the second
		}
		if err != nil {
			log.Printf("pull: %v", err)
			if puller.Err() != nil { // the connection is gone: dial again
				puller.Close()
				puller = nil
			}
			time.Sleep(time.Second)
			continue
		}
		for _, job := range jobs {
			var q string
			var id, attempt int64
			var payload []byte
			fields, _ := redis.Values(job, nil)
			if _, err := redis.Scan(fields, &q, &id, &payload, &attempt); err != nil {
				log.Printf("job %v: %v", job, err)
				continue
			}
			run(ctx, q, id, payload, attempt)
		}
	}
	if puller != nil {
		puller.Close()
	}
	pool.Close()
	log.Print("worker stopped")
}

// run handles one job and ends it: QACK, QFAIL with the error, or, when the
// worker stops first, QFAIL ... SILENT. ATTEMPT makes the server refuse
// (LEASELOST) if the lease ran out and another worker has the job now.
func run(ctx context.Context, q string, id int64, payload []byte, attempt int64) {
	if ctx.Err() != nil { // pulled as the worker was stopping: not started
		handBack(q, id, attempt)
		return
	}
	work, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- handle(work, payload) }()

	touch := time.NewTicker(time.Duration(leaseMs) * time.Millisecond / 3)
	defer touch.Stop()
	for {
		select {
		case <-touch.C:
			// Renew the lease of a long job, for another LEASE_MS.
			if _, err := command("QTOUCH", q, id, "LEASE", leaseMs, "ATTEMPT", attempt); err != nil {
				log.Printf("job %d: touch: %v", id, err)
			}
		case <-ctx.Done():
			// Not finished: back to the queue for another worker. The
			// process exits without waiting for the handler.
			handBack(q, id, attempt)
			return
		case err := <-done:
			if ctx.Err() != nil {
				handBack(q, id, attempt) // interrupted by the shutdown
				return
			}
			if err == nil {
				if _, err := command("QACK", q, id, "ATTEMPT", attempt); err != nil {
					log.Printf("job %d: ack: %v", id, err)
				}
				return
			}
			state, ferr := redis.String(command("QFAIL", q, id, "ERROR", err.Error(), "ATTEMPT", attempt))
			if ferr != nil {
				log.Printf("job %d: fail: %v", id, ferr)
				return
			}
			log.Printf("job %d failed (%v): now %s", id, err, state)
			return
		}
	}
}

// handBack returns an unfinished job to the queue for another worker,
// without counting the attempt.
func handBack(q string, id, attempt int64) {
	if _, err := command("QFAIL", q, id, "SILENT", "ATTEMPT", attempt); err != nil {
		log.Printf("job %d: hand back: %v", id, err)
		return
	}
	log.Printf("job %d handed back", id)
}

func env(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}

func envInt(name string, fallback int) int {
	n, err := strconv.Atoi(env(name, strconv.Itoa(fallback)))
	if err != nil {
		log.Fatalf("%s: %v", name, err)
	}
	return n
}
