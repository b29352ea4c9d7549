// Package stats owns the little statistics of the end-to-end benchmark:
// exact nearest-rank percentiles over recorded samples, and the
// median/min/max summary of repeated rounds. It keeps every sample rather
// than binning them: a run of ten seconds at a few thousand requests per
// second is small enough to sort.
//
// It does not measure anything itself; the load generator and the harness
// feed it.
package stats

import (
	"cmp"
	"math"
	"slices"
)

// Percentile returns the p-th percentile (0 ≤ p ≤ 100) of sorted by the
// nearest-rank method: the smallest sample such that at least p percent of
// the samples are less than or equal to it. p = 0 gives the smallest
// sample, p = 100 the largest. sorted must be in ascending order; an empty
// slice gives the zero value.
func Percentile[T cmp.Ordered](sorted []T, p float64) T {
	var zero T
	n := len(sorted)
	if n == 0 {
		return zero
	}
	p = min(max(p, 0), 100)
	rank := int(math.Ceil(p / 100 * float64(n)))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

// Summary is the median and range of one metric over several rounds.
type Summary struct {
	Median, Min, Max float64
	// N is the number of values summarised; 0 means there were none and
	// the other fields are meaningless.
	N int
}

// Summarize returns the median (the mean of the two middle values for an
// even count), minimum and maximum of vs. NaNs are left out: they mark a
// round in which the metric could not be measured. vs is not modified.
func Summarize(vs []float64) Summary {
	s := make([]float64, 0, len(vs))
	for _, v := range vs {
		if !math.IsNaN(v) {
			s = append(s, v)
		}
	}
	if len(s) == 0 {
		return Summary{}
	}
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return Summary{Median: med, Min: s[0], Max: s[n-1], N: n}
}
