package stats

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPercentile(t *testing.T) {
	ten := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name   string
		sorted []int
		p      float64
		want   int
	}{
		{"empty", nil, 50, 0},
		{"one sample p0", []int{7}, 0, 7},
		{"one sample p50", []int{7}, 50, 7},
		{"one sample p100", []int{7}, 100, 7},
		{"p0 is the minimum", ten, 0, 1},
		{"p50 of ten", ten, 50, 5},
		{"p90 of ten", ten, 90, 9},
		{"p99 of ten rounds up to the maximum", ten, 99, 10},
		{"p100 is the maximum", ten, 100, 10},
		{"p above 100 is clamped", ten, 150, 10},
		{"negative p is clamped", ten, -5, 1},
		{"p50 of hundred", hundred, 50, 50},
		{"p99 of hundred", hundred, 99, 99},
		{"p99.9 of hundred", hundred, 99.9, 100},
		{"p1 of hundred", hundred, 1, 1},
		{"p1.5 of hundred", hundred, 1.5, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

func TestPercentileDurations(t *testing.T) {
	d := []time.Duration{100 * time.Microsecond, 200 * time.Microsecond, 3 * time.Millisecond}
	if got, want := Percentile(d, 50), 200*time.Microsecond; got != want {
		t.Errorf("Percentile(%v, 50) = %v, want %v", d, got, want)
	}
}

func TestSummarize(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name string
		in   []float64
		want Summary
	}{
		{"empty", nil, Summary{}},
		{"only NaN", []float64{nan, nan}, Summary{}},
		{"one", []float64{4}, Summary{Median: 4, Min: 4, Max: 4, N: 1}},
		{"odd count, unsorted", []float64{30, 10, 20}, Summary{Median: 20, Min: 10, Max: 30, N: 3}},
		{"even count averages the middle two", []float64{4, 1, 3, 2}, Summary{Median: 2.5, Min: 1, Max: 4, N: 4}},
		{"NaN rounds are left out", []float64{5, nan, 1, 3}, Summary{Median: 3, Min: 1, Max: 5, N: 3}},
		{"negative values", []float64{-0.2, 0.1, -0.05}, Summary{Median: -0.05, Min: -0.2, Max: 0.1, N: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]float64(nil), tt.in...)
			got := Summarize(in)
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("Summarize(%v) mismatch (-got +want):\n%s", tt.in, diff)
			}
			if !cmp.Equal(in, tt.in, cmp.Comparer(func(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) })) {
				t.Errorf("Summarize(%v) modified its input: %v", tt.in, in)
			}
		})
	}
}
