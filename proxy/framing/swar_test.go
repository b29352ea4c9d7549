package framing

import "testing"

// The word-at-a-time scans must agree with the byte tables at every
// position and for every byte value.
func TestScansMatchTables(t *testing.T) {
	tests := []struct {
		name  string
		scan  func([]byte) int
		class uint8
	}{
		{"valueLen", valueLen, classValue},
		{"targetLen", targetLen, classTarget},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for b := range 256 {
				for pos := range 20 {
					s := []byte("abcdefghij\xc3\xa9klmnopqrstuvwx")[:20]
					s[pos] = byte(b)
					want := 20
					for i, c := range s {
						if classes[c]&tt.class == 0 {
							want = i
							break
						}
					}
					if got := tt.scan(s); got != want {
						t.Errorf("%s(%q) = %d, want %d", tt.name, s, got, want)
					}
				}
			}
		})
	}
}
