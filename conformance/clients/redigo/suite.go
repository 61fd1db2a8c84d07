// The conformance scenarios through redigo, with its own API: redis.Dial and
// its DialOptions, Conn.Do for raw commands, Send/Flush/Receive for
// pipelining, DoWithTimeout for the blocking pull, redis.Error for error
// replies, the reply helpers (Int64, Int64s, Values, Int64Map, Scan,
// ScanStruct), and a redis.Pool with TestOnBorrow for reconnecting.
//
// redigo speaks RESP2 only and sends no handshake of its own beyond the
// options it is given (AUTH, CLIENT SETNAME, SELECT). run.sh builds this
// against Debian's packaged redigo; the contract is in conformance/README.md.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Set by run.sh from the Debian package.
var version = "redigo@unknown"

var (
	addr     = "127.0.0.1:" + os.Getenv("QUERN_PORT")
	authAddr = "127.0.0.1:" + os.Getenv("QUERN_AUTH_PORT")
	password = os.Getenv("QUERN_PASSWORD")
	restart  = os.Getenv("QUERN_RESTART")
	// Queue names of this run's own, so that a rerun against the same
	// server starts from empty queues too.
	q = "go:redigo:" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
)

// QGET's reply (a flat field/value list in RESP2), read with ScanStruct.
// Null fields (ready_at, lease_until, last_error, ...) are left as they are.
type job struct {
	ID         int64  `redis:"id"`
	Queue      string `redis:"queue"`
	State      string `redis:"state"`
	Payload    string `redis:"payload"`
	Priority   int64  `redis:"priority"`
	Attempt    int64  `redis:"attempt"`
	Retries    int64  `redis:"retries"`
	Backoff    int64  `redis:"backoff"`
	Lease      int64  `redis:"lease"`
	CreatedAt  int64  `redis:"created_at"`
	ReadyAt    int64  `redis:"ready_at"`
	LeaseUntil int64  `redis:"lease_until"`
	LastError  string `redis:"last_error"`
}

// One job of a QPULL, QPEEK or QDLQ LIST reply: [queue, id, payload, attempt(, last_error)].
type delivery struct {
	Queue     string
	ID        int64
	Payload   string
	Attempt   int64
	LastError string
}

func deliveries(reply interface{}, err error) ([]delivery, error) {
	jobs, err := redis.Values(reply, err)
	if err != nil {
		return nil, err
	}
	out := make([]delivery, len(jobs))
	for i, j := range jobs {
		fields, err := redis.Values(j, nil)
		if err != nil {
			return nil, err
		}
		d := &out[i]
		rest, err := redis.Scan(fields, &d.Queue, &d.ID, &d.Payload, &d.Attempt)
		if err != nil {
			return nil, err
		}
		if len(rest) > 0 && rest[0] != nil {
			if _, err := redis.Scan(rest, &d.LastError); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func check(ok bool, format string, args ...interface{}) error {
	if ok {
		return nil
	}
	return fmt.Errorf(format, args...)
}

// discarded counts the idle connections TestOnBorrow found dead.
var discarded int64

// The application's client: a pool, as redigo programs hold one. Its
// TestOnBorrow PINGs an idle connection before handing it out, so a
// connection the server closed (a restart) is dropped and a new one dialed.
func newPool(address string, options ...redis.DialOption) *redis.Pool {
	options = append(options,
		redis.DialConnectTimeout(5*time.Second),
		redis.DialReadTimeout(10*time.Second),
		redis.DialWriteTimeout(10*time.Second))
	return &redis.Pool{
		MaxIdle:     4,
		IdleTimeout: 5 * time.Minute,
		Dial:        func() (redis.Conn, error) { return redis.Dial("tcp", address, options...) },
		TestOnBorrow: func(c redis.Conn, _ time.Time) error {
			_, err := c.Do("PING")
			if err != nil {
				atomic.AddInt64(&discarded, 1)
			}
			return err
		},
	}
}

var pool = newPool(addr)

func connect() error {
	// The client's defaults: no options at all.
	c, err := redis.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	pong, err := redis.String(c.Do("PING"))
	if err != nil {
		return err
	}
	if err := check(pong == "PONG", "PING answered %q", pong); err != nil {
		return err
	}
	// And through the pool.
	p := pool.Get()
	defer p.Close()
	pong, err = redis.String(p.Do("PING"))
	if err != nil {
		return err
	}
	return check(pong == "PONG", "PING through the pool answered %q", pong)
}

func pushOptions() error {
	c := pool.Get()
	defer c.Close()
	queue := q + ":opt"
	id, err := redis.Int64(c.Do("QPUSH", queue, "payload", "PRIORITY", 5, "RETRIES", 2, "BACKOFF", 100, "LEASE", 5000))
	if err != nil {
		return err
	}
	fields, err := redis.Values(c.Do("QGET", queue, id))
	if err != nil {
		return err
	}
	var j job
	if err := redis.ScanStruct(fields, &j); err != nil {
		return err
	}
	return check(j.ID == id && j.Queue == queue && j.State == "waiting" && j.Payload == "payload" &&
		j.Priority == 5 && j.Retries == 2 && j.Backoff == 100 && j.Lease == 5000 && j.Attempt == 0 &&
		j.CreatedAt > 0 && j.LeaseUntil == 0 && j.LastError == "",
		"QGET %d: %+v", id, j)
}

func mpush() error {
	c := pool.Get()
	defer c.Close()
	ids, err := redis.Int64s(c.Do("QMPUSH", q+":m", 3, "a", "b", "c"))
	if err != nil {
		return err
	}
	return check(len(ids) == 3 && ids[1] == ids[0]+1 && ids[2] == ids[0]+2, "ids %v", ids)
}

var blockedRe = regexp.MustCompile(`(?m)^blocked_clients:(\d+)`)

func blockedClients(c redis.Conn) (int, error) {
	info, err := redis.String(c.Do("INFO", "clients"))
	if err != nil {
		return 0, err
	}
	m := blockedRe.FindStringSubmatch(info)
	if m == nil {
		return 0, fmt.Errorf("no blocked_clients in INFO: %q", info)
	}
	return strconv.Atoi(m[1])
}

func blockingPull() error {
	queue := q + ":b"
	// A connection of its own for the blocking pull, as for BLPOP, with no
	// read timeout of its own: DoWithTimeout gives this one command longer
	// than its BLOCK.
	worker, err := redis.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer worker.Close()
	type result struct {
		jobs []delivery
		err  error
	}
	pulled := make(chan result, 1)
	go func() {
		jobs, err := deliveries(redis.DoWithTimeout(worker, 7*time.Second, "QPULL", queue, "BLOCK", 5000))
		pulled <- result{jobs, err}
	}()

	c := pool.Get()
	defer c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := blockedClients(c)
		if err != nil {
			return err
		}
		if n >= 1 {
			break
		}
		select {
		case r := <-pulled:
			return fmt.Errorf("the pull returned before any push: %+v %v", r.jobs, r.err)
		default:
		}
		if time.Now().After(deadline) {
			return errors.New("the pull never blocked")
		}
		time.Sleep(10 * time.Millisecond)
	}
	id, err := redis.Int64(c.Do("QPUSH", queue, "wake"))
	if err != nil {
		return err
	}
	r := <-pulled
	if r.err != nil {
		return fmt.Errorf("the blocked QPULL: %w", r.err)
	}
	return check(len(r.jobs) == 1 && r.jobs[0] == delivery{Queue: queue, ID: id, Payload: "wake", Attempt: 1},
		"pushed %d, the blocked pull got %+v", id, r.jobs)
}

func ack() error {
	c := pool.Get()
	defer c.Close()
	queue := q + ":a"
	id, err := redis.Int64(c.Do("QPUSH", queue, "x"))
	if err != nil {
		return err
	}
	jobs, err := deliveries(c.Do("QPULL", queue))
	if err != nil {
		return err
	}
	if err := check(len(jobs) == 1 && jobs[0].ID == id && jobs[0].Attempt == 1, "pulled %+v", jobs); err != nil {
		return err
	}
	n, err := redis.Int(c.Do("QACK", queue, id))
	if err != nil {
		return err
	}
	if err := check(n == 1, "first QACK counted %d", n); err != nil {
		return err
	}
	n, err = redis.Int(c.Do("QACK", queue, id))
	if err != nil {
		return err
	}
	return check(n == 0, "second QACK counted %d", n)
}

func failDeadRequeue() error {
	c := pool.Get()
	defer c.Close()
	queue := q + ":d"
	id, err := redis.Int64(c.Do("QPUSH", queue, "x", "RETRIES", 0))
	if err != nil {
		return err
	}
	if _, err := deliveries(c.Do("QPULL", queue)); err != nil {
		return err
	}
	state, err := redis.String(c.Do("QFAIL", queue, id, "ERROR", "boom"))
	if err != nil {
		return err
	}
	if err := check(state == "dead", "QFAIL answered %q", state); err != nil {
		return err
	}
	dead, err := deliveries(c.Do("QDLQ", "LIST", queue))
	if err != nil {
		return err
	}
	want := delivery{Queue: queue, ID: id, Payload: "x", Attempt: 1, LastError: "boom"}
	if err := check(len(dead) == 1 && dead[0] == want, "QDLQ LIST: %+v", dead); err != nil {
		return err
	}
	n, err := redis.Int(c.Do("QDLQ", "REQUEUE", queue, "ALL"))
	if err != nil {
		return err
	}
	if err := check(n == 1, "QDLQ REQUEUE counted %d", n); err != nil {
		return err
	}
	waiting, err := redis.Int(c.Do("QLEN", queue))
	if err != nil {
		return err
	}
	return check(waiting == 1, "QLEN after the requeue: %d", waiting)
}

func stats() error {
	c := pool.Get()
	defer c.Close()
	queue := q + ":s"
	if _, err := c.Do("QPUSH", queue, "x"); err != nil {
		return err
	}
	// RESP2's flat field/value list, read as a map.
	fields, err := redis.Int64Map(c.Do("QSTATS", queue))
	if err != nil {
		return err
	}
	for _, name := range []string{"waiting", "delayed", "active", "blocked", "dead", "paused", "pushed",
		"acked", "failed", "retried", "dead_total", "expired_leases", "oldest_waiting_age_ms"} {
		if _, ok := fields[name]; !ok {
			return fmt.Errorf("QSTATS has no %q: %v", name, fields)
		}
	}
	return check(fields["waiting"] == 1 && fields["pushed"] == 1 && fields["active"] == 0, "QSTATS %v", fields)
}

func pipeline() error {
	c := pool.Get()
	defer c.Close()
	queue := q + ":p"
	for i := 0; i < 1000; i++ {
		if err := c.Send("QPUSH", queue, i); err != nil {
			return err
		}
	}
	if err := c.Flush(); err != nil {
		return err
	}
	var last int64
	for i := 0; i < 1000; i++ {
		id, err := redis.Int64(c.Receive())
		if err != nil {
			return fmt.Errorf("reply %d: %w", i, err)
		}
		if id <= last {
			return fmt.Errorf("reply %d: id %d after %d", i, id, last)
		}
		last = id
	}
	n, err := redis.Int(c.Do("QLEN", queue))
	if err != nil {
		return err
	}
	return check(n == 1000, "QLEN %d", n)
}

func errorType() error {
	c := pool.Get()
	defer c.Close()
	_, err := c.Do("QPUSH", q, "x", "PRIORITY", "high")
	var replyErr redis.Error
	if !errors.As(err, &replyErr) {
		return fmt.Errorf("want a redis.Error, got %T: %v", err, err)
	}
	if err := check(replyErr.Error() == "ERR value is not an integer or out of range", "message %q", replyErr); err != nil {
		return err
	}
	// An error reply leaves the connection usable.
	n, err := redis.Int(c.Do("QLEN", q))
	if err != nil {
		return err
	}
	return check(n == 0, "QLEN %d after a refused push", n)
}

func auth() error {
	anonymous, err := redis.Dial("tcp", authAddr)
	if err != nil {
		return err
	}
	defer anonymous.Close()
	_, err = anonymous.Do("QLEN", q)
	var replyErr redis.Error
	if !errors.As(err, &replyErr) || !strings.HasPrefix(replyErr.Error(), "NOAUTH ") {
		return fmt.Errorf("without the password QLEN gave %T %v, not NOAUTH", err, err)
	}

	// A wrong password: Dial's AUTH fails with the server's WRONGPASS.
	if c, err := redis.Dial("tcp", authAddr, redis.DialPassword(password+"-wrong")); err == nil {
		c.Close()
		return errors.New("Dial with a wrong password succeeded")
	} else if !errors.As(err, &replyErr) || !strings.HasPrefix(replyErr.Error(), "WRONGPASS ") {
		return fmt.Errorf("a wrong password gave %T %v, not WRONGPASS", err, err)
	}

	// The client's option: DialPassword sends AUTH as the connection opens,
	// for a pool's every connection.
	authed := newPool(authAddr, redis.DialPassword(password))
	defer authed.Close()
	c := authed.Get()
	defer c.Close()
	pong, err := redis.String(c.Do("PING"))
	if err != nil {
		return err
	}
	if err := check(pong == "PONG", "PING answered %q", pong); err != nil {
		return err
	}
	// AUTH default <password>: DialUsername with DialPassword.
	named, err := redis.Dial("tcp", authAddr, redis.DialUsername("default"), redis.DialPassword(password))
	if err != nil {
		return err
	}
	defer named.Close()
	pong, err = redis.String(named.Do("PING"))
	if err != nil {
		return err
	}
	return check(pong == "PONG", "PING (user default) answered %q", pong)
}

func reconnect() error {
	queue := q + ":r"
	c := pool.Get()
	if _, err := c.Do("QMPUSH", queue, 2, "a", "b"); err != nil {
		c.Close()
		return err
	}
	c.Close() // back to the pool's idle list, still open
	if pool.IdleCount() == 0 {
		return errors.New("the pool kept no idle connection")
	}
	before := atomic.LoadInt64(&discarded)

	cmd := exec.Command("sh", "-c", restart)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("QUERN_RESTART: %w", err)
	}

	// The same pool: TestOnBorrow finds the idle connection closed by the
	// restart, drops it, and Get dials a new one.
	c = pool.Get()
	defer c.Close()
	n, err := redis.Int(c.Do("QLEN", queue))
	if err != nil {
		return err
	}
	if err := check(n == 2, "QLEN after the restart: %d", n); err != nil {
		return err
	}
	return check(atomic.LoadInt64(&discarded) > before, "TestOnBorrow dropped no connection")
}

func main() {
	fmt.Println("SUITE " + version)
	scenarios := []struct {
		name string
		run  func() error
	}{
		{"connect", connect},
		{"push_options", pushOptions},
		{"mpush", mpush},
		{"blocking_pull", blockingPull},
		{"ack", ack},
		{"fail_dead_requeue", failDeadRequeue},
		{"stats", stats},
		{"pipeline", pipeline},
		{"error_type", errorType},
		{"auth", auth},
		{"reconnect", reconnect},
	}
	failed := 0
	for _, s := range scenarios {
		done := make(chan error, 1)
		go func(run func() error) { done <- run() }(s.run)
		var err error
		select {
		case err = <-done:
		case <-time.After(20 * time.Second):
			err = errors.New("timed out after 20 s")
		}
		if err == nil {
			fmt.Println("PASS " + s.name)
		} else {
			failed++
			fmt.Printf("FAIL %s %T: %s\n", s.name, err, strings.ReplaceAll(err.Error(), "\n", " "))
		}
	}
	pool.Close()
	if failed > 0 {
		os.Exit(1)
	}
}
