// workloads.go — the workloads of bench/workloads.lua, in Go, for the
// goro/Go ratios of bench/run.sh. Standard library only (builds offline).
//
//	go build -o /tmp/gobench bench/go/workloads.go
//	/tmp/gobench W1|W2|W3|W4|W4base|W5|W6|W7|W7s|W8 [scale]
//
// Prints "RESULT <name> <figure>" in the units of the Lua version, and
// "PROCS <n>". The Go shapes follow the Lua ones one for one; two
// differences are the language's: W7 sends a 10-field struct by value (Lua
// copies a table into the receiver's state), W7s sends a 1 KB string, which
// Go shares (immutable) where goro copies it.
package main

import (
	"fmt"
	"math"
	"os"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

var scale = 1.0

func size(n, min int) int {
	v := int(math.Floor(float64(n)*scale + 0.5))
	if v < min {
		v = min
	}
	return v
}

func result(name string, v float64) { fmt.Printf("RESULT %s %.6g\n", name, v) }

func check(ok bool, msg string) {
	if !ok {
		fmt.Fprintln(os.Stderr, msg)
		os.Exit(1)
	}
}

func countPrimes(lo, hi int) int {
	n := 0
	for x := lo; x < hi; x++ {
		if x >= 2 {
			prime := true
			if x%2 == 0 {
				prime = x == 2
			} else {
				for d := 3; d*d <= x; d += 2 {
					if x%d == 0 {
						prime = false
						break
					}
				}
			}
			if prime {
				n++
			}
		}
	}
	return n
}

const w4Block = 10000

func primeBlocks(limit, k, ways int) int {
	n, nblocks := 0, (limit+w4Block-1)/w4Block
	for b := k; b < nblocks; b += ways {
		hi := (b + 1) * w4Block
		if hi > limit {
			hi = limit
		}
		n += countPrimes(b*w4Block, hi)
	}
	return n
}

func rssKiB() int {
	b, err := os.ReadFile("/proc/self/status")
	check(err == nil, "cannot read /proc/self/status")
	m := regexp.MustCompile(`VmRSS:\s*(\d+)`).FindSubmatch(b)
	v, _ := strconv.Atoi(string(m[1]))
	return v
}

func w1() {
	n := size(100000, 100)
	ch := make(chan int)
	t0 := time.Now()
	for i := 1; i <= n; i++ {
		go func(v int) { ch <- v * 2 }(i)
	}
	sum := 0
	for i := 0; i < n; i++ {
		sum += <-ch
	}
	dt := time.Since(t0).Seconds()
	check(sum == n*(n+1), "W1: wrong sum")
	result("W1", dt/float64(n)*1e6)
}

func w2() {
	n := size(200000, 1000)
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v + 1
		}
		close(pong)
	}()
	t0 := time.Now()
	v := 0
	for i := 0; i < n; i++ {
		ping <- v
		v = <-pong
	}
	dt := time.Since(t0).Seconds()
	close(ping)
	check(v == n, "W2: wrong count")
	result("W2", dt/float64(n)*1e6)
}

func w3() {
	n := size(1000000, 1000)
	jobs, results := make(chan int, 100), make(chan int, 100)
	t0 := time.Now()
	go func() {
		for i := 1; i <= n; i++ {
			jobs <- i
		}
		close(jobs)
	}()
	for w := 0; w < 4; w++ {
		go func() {
			for v := range jobs {
				results <- v * 2
			}
		}()
	}
	sum := 0
	for i := 0; i < n; i++ {
		sum += <-results
	}
	dt := time.Since(t0).Seconds()
	check(sum == n*(n+1), "W3: wrong sum")
	result("W3", float64(n)/dt/1e6)
}

func w4(ways int, name string) {
	limit := size(3000000, 20000)
	res := make(chan int, ways)
	t0 := time.Now()
	for k := 0; k < ways; k++ {
		go func(k int) { res <- primeBlocks(limit, k, ways) }(k)
	}
	n := 0
	for k := 0; k < ways; k++ {
		n += <-res
	}
	dt := time.Since(t0).Seconds()
	check(limit != 3000000 || n == 216816, "W4: wrong count")
	fmt.Printf("COUNT %d\n", n)
	result(name, dt)
}

func w5() {
	n := size(100000, 1000)
	ch := make(chan int)
	var started, done sync.WaitGroup
	runtime.GC()
	before := rssKiB()
	started.Add(n)
	done.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			started.Done()
			<-ch
			done.Done()
		}()
	}
	started.Wait()
	time.Sleep(20 * time.Millisecond)
	after := rssKiB()
	close(ch)
	done.Wait()
	result("W5", float64(after-before)/float64(n))
}

func w6() {
	n := size(1000000, 1000)
	per := n / 4
	var chans [4]chan int
	for i := range chans {
		chans[i] = make(chan int, 100)
	}
	t0 := time.Now()
	for i := range chans {
		go func(c chan int) {
			for v := 1; v <= per; v++ {
				c <- v
			}
			close(c)
		}(chans[i])
	}
	c1, c2, c3, c4 := chans[0], chans[1], chans[2], chans[3]
	open, sum, count := 4, 0, 0
	for open > 0 {
		var v int
		var ok bool
		var which *chan int
		select {
		case v, ok = <-c1:
			which = &c1
		case v, ok = <-c2:
			which = &c2
		case v, ok = <-c3:
			which = &c3
		case v, ok = <-c4:
			which = &c4
		}
		if ok {
			sum += v
			count++
		} else {
			*which = nil
			open--
		}
	}
	dt := time.Since(t0).Seconds()
	check(count == 4*per && sum == 4*(per*(per+1)/2), "W6: wrong sum")
	result("W6", float64(4*per)/dt/1e6)
}

type rec struct {
	id         int
	name       string
	x, y       float64
	ok         bool
	a, b, c, d int
	e          string
}

func w7() {
	n := size(200000, 1000)
	ch := make(chan rec, 100)
	t0 := time.Now()
	go func() {
		v := rec{name: "item", x: 1.5, y: -2.25, ok: true, a: 1, b: 2, c: 3, d: 4, e: "e"}
		for i := 1; i <= n; i++ {
			v.id = i
			ch <- v
		}
		close(ch)
	}()
	cnt := 0
	for v := range ch {
		if v.name == "item" && v.e == "e" {
			cnt++
		}
	}
	dt := time.Since(t0).Seconds()
	check(cnt == n, "W7: wrong count")
	result("W7", dt/float64(n)*1e6)
}

func w7s() {
	n := size(200000, 1000)
	ch := make(chan string, 100)
	t0 := time.Now()
	go func() {
		s := strings.Repeat("0123456789abcdef", 64)
		for i := 1; i <= n; i++ {
			ch <- s
		}
		close(ch)
	}()
	cnt := 0
	for s := range ch {
		if len(s) == 1024 {
			cnt++
		}
	}
	dt := time.Since(t0).Seconds()
	check(cnt == n, "W7s: wrong count")
	result("W7s", dt/float64(n)*1e6)
}

func w8() {
	n := size(1000000, 1000)
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() { wg.Done() }()
	}
	wg.Wait()
	dt := time.Since(t0).Seconds()
	result("W8", dt/float64(n)*1e6)
}

func w9() {
	n := size(100000, 1000)
	c := make(chan int)
	go func() {
		for i := 1; i <= n; i++ {
			c <- i
		}
	}()
	t0 := time.Now()
	sum := 0
	for i := 0; i < n; i++ {
		sum += <-c
	}
	dt := time.Since(t0).Seconds()
	check(sum == n*(n+1)/2, "W9: wrong sum")
	result("W9", dt/float64(n)*1e6)
}

func w10() {
	n := size(100000, 1000)
	a, b := make(chan int), make(chan int)
	feed := func(c chan int, s int) {
		for i := 1; i <= n; i++ {
			c <- s * i
		}
	}
	go feed(a, 1)
	go feed(b, -1)
	t0 := time.Now()
	sum := 0
	for i := 0; i < 2*n; i++ {
		select {
		case v := <-a:
			sum += v
		case v := <-b:
			sum += v
		}
	}
	dt := time.Since(t0).Seconds()
	check(sum == 0, "W10: wrong sum")
	result("W10", dt/float64(2*n)*1e6)
}

func w11() {
	n := size(5000, 200)
	c := make(chan time.Duration)
	lat := make([]float64, n)
	for i := 0; i < n; i++ {
		t0 := time.Now()
		go func() { c <- time.Since(t0) }()
		lat[i] = (<-c).Seconds()
	}
	sort.Float64s(lat)
	k := int(math.Ceil(float64(n)*0.99)) - 1
	if k < 0 {
		k = 0
	}
	result("W11", lat[k]*1e6)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: workloads W1..W8 [scale]")
		os.Exit(2)
	}
	if len(os.Args) > 2 {
		s, err := strconv.ParseFloat(os.Args[2], 64)
		check(err == nil, "bad scale")
		scale = s
	}
	fmt.Printf("PROCS %d\n", runtime.GOMAXPROCS(0))
	switch os.Args[1] {
	case "W1":
		w1()
	case "W2":
		w2()
	case "W3":
		w3()
	case "W4":
		w4(2, "W4")
	case "W4base":
		w4(1, "W4base")
	case "W5":
		w5()
	case "W6":
		w6()
	case "W7":
		w7()
	case "W7s":
		w7s()
	case "W8":
		w8()
	case "W9":
		w9()
	case "W10":
		w10()
	case "W11":
		w11()
	default:
		fmt.Fprintln(os.Stderr, "unknown workload", os.Args[1])
		os.Exit(2)
	}
}
