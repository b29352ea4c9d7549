package stats

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// WithRange formats s as "median [min–max]" with f, only the median when
// min and max read the same, and "—" when there is nothing.
func WithRange(s Summary, f func(float64) string) string {
	switch {
	case s.N == 0:
		return "—"
	case s.N == 1 || f(s.Min) == f(s.Max):
		return f(s.Median)
	}
	return fmt.Sprintf("%s [%s–%s]", f(s.Median), f(s.Min), f(s.Max))
}

// Thousands formats v rounded to a whole number with thousands
// separators: 28,194.
func Thousands(v float64) string {
	n := int64(math.Round(v))
	neg := n < 0
	if neg {
		n = -n
	}
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
