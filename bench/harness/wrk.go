package main

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// wrkResult is what one wrk run with --latency reported.
type wrkResult struct {
	RPS      float64
	Requests int64
	// Latency percentiles from the "Latency Distribution" block.
	P50, P75, P90, P99 time.Duration
	// Non2xx counts responses that were neither 2xx nor 3xx.
	Non2xx int64
	// SocketErrors is connect+read+write+timeout errors.
	SocketErrors int64
}

var errNoWrkResult = errors.New("wrk output has no result")

// parseWrk reads the text wrk prints for a run with --latency:
//
//	Running 10s test @ https://localhost:8443/api/contacts/42
//	  1 threads and 32 connections
//	  Thread Stats   Avg      Stdev     Max   +/- Stdev
//	    Latency     1.12ms  421.78us  10.55ms   78.26%
//	    Req/Sec    28.36k     1.06k   29.63k    84.00%
//	  Latency Distribution
//	     50%    0.99ms
//	     75%    1.22ms
//	     90%    1.73ms
//	     99%    2.51ms
//	  140990 requests in 5.00s, 61.04MB read
//	  Socket errors: connect 0, read 3, write 0, timeout 0
//	  Non-2xx or 3xx responses: 12
//	Requests/sec:  28194.20
//	Transfer/sec:     12.21MB
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	var haveRPS bool
	pcts := map[string]*time.Duration{"50%": &r.P50, "75%": &r.P75, "90%": &r.P90, "99%": &r.P99}
	found := map[string]bool{}
	inDist := false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		fields := strings.Fields(line)
		switch {
		case line == "Latency Distribution":
			inDist = true
		case inDist && len(fields) == 2 && strings.HasSuffix(fields[0], "%"):
			if dst, ok := pcts[fields[0]]; ok {
				d, err := parseWrkDuration(fields[1])
				if err != nil {
					return wrkResult{}, fmt.Errorf("wrk latency %s: %w", fields[0], err)
				}
				*dst, found[fields[0]] = d, true
			}
			continue
		case strings.HasPrefix(line, "Requests/sec:") && len(fields) == 2:
			v, err := strconv.ParseFloat(fields[1], 64)
			if err != nil {
				return wrkResult{}, fmt.Errorf("wrk Requests/sec %q: %w", fields[1], err)
			}
			r.RPS, haveRPS = v, true
		case len(fields) >= 3 && fields[1] == "requests" && fields[2] == "in":
			n, err := strconv.ParseInt(fields[0], 10, 64)
			if err != nil {
				return wrkResult{}, fmt.Errorf("wrk request count %q: %w", fields[0], err)
			}
			r.Requests = n
		case strings.HasPrefix(line, "Socket errors:"):
			// connect 0, read 3, write 0, timeout 0
			for part := range strings.SplitSeq(strings.TrimPrefix(line, "Socket errors:"), ",") {
				kv := strings.Fields(part)
				if len(kv) != 2 {
					return wrkResult{}, fmt.Errorf("wrk socket errors %q: unexpected form", line)
				}
				n, err := strconv.ParseInt(kv[1], 10, 64)
				if err != nil {
					return wrkResult{}, fmt.Errorf("wrk socket errors %q: %w", line, err)
				}
				r.SocketErrors += n
			}
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:") && len(fields) == 5:
			n, err := strconv.ParseInt(fields[4], 10, 64)
			if err != nil {
				return wrkResult{}, fmt.Errorf("wrk non-2xx count %q: %w", fields[4], err)
			}
			r.Non2xx = n
		}
		inDist = inDist && line == "Latency Distribution"
	}
	if !haveRPS {
		return wrkResult{}, errNoWrkResult
	}
	for _, p := range []string{"50%", "99%"} {
		if !found[p] {
			return wrkResult{}, fmt.Errorf("wrk output has no %s latency (was --latency given?)", p)
		}
	}
	return r, nil
}

// wrkUnits are the units wrk prints times in, smallest first: it scales
// microseconds by 1000 up to seconds and seconds by 60 up to hours.
var wrkUnits = []struct {
	suffix string
	unit   time.Duration
}{
	{"us", time.Microsecond},
	{"ms", time.Millisecond},
	{"s", time.Second},
	{"m", time.Minute},
	{"h", time.Hour},
}

// parseWrkDuration parses a wrk time such as 456.00us, 1.23ms, 2.00s or
// 1.50m.
func parseWrkDuration(s string) (time.Duration, error) {
	for _, u := range wrkUnits {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		// "ms" also ends in "s": a number must remain.
		v, err := strconv.ParseFloat(num, 64)
		if err != nil {
			continue
		}
		if v < 0 {
			break
		}
		return time.Duration(math.Round(v * float64(u.unit))), nil
	}
	return 0, fmt.Errorf("%q is not a wrk time (us, ms, s, m, h)", s)
}
