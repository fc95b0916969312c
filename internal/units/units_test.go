package units_test

import (
	"math"
	"testing"

	"github.com/ferrydev/ferry/internal/units"
)

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 999: "999 B", 1000: "1.0 kB", 1_500_000: "1.5 MB", 3e12: "3.0 TB",
		999_999: "1000.0 kB", math.MaxInt64: "9.2 EB",
	} {
		if got := units.Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
