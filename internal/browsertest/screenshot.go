package browsertest

import (
	"bytes"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// UpdateGolden is set by FERRY_UPDATE_GOLDEN=1: screenshot tests then write
// their baselines instead of comparing.
func UpdateGolden() bool { return os.Getenv("FERRY_UPDATE_GOLDEN") == "1" }

// Tolerance bounds how different a screenshot may be from its baseline:
// a pixel differs when any channel is off by more than Level, and at most
// Ratio of all pixels may differ (fonts anti-alias slightly differently
// from run to run).
type Tolerance struct {
	Level int
	Ratio float64
}

// DefaultTolerance accepts anti-aliasing noise, not layout changes.
var DefaultTolerance = Tolerance{Level: 40, Ratio: 0.005}

// CompareGolden compares a PNG screenshot with the baseline at golden. On
// a mismatch it writes the screenshot next to the baseline as
// NAME.actual.png and a diff image NAME.diff.png (both gitignored).
func CompareGolden(t testing.TB, shot []byte, golden string, tol Tolerance) {
	t.Helper()
	if UpdateGolden() {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote baseline %s", golden)
		return
	}
	wantB, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (create baselines with FERRY_UPDATE_GOLDEN=1)", err)
	}
	got, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	want, err := png.Decode(bytes.NewReader(wantB))
	if err != nil {
		t.Fatalf("baseline %s: %v", golden, err)
	}
	base := golden[:len(golden)-len(filepath.Ext(golden))]
	fail := func(format string, a ...any) {
		_ = os.WriteFile(base+".actual.png", shot, 0o644)
		t.Helper()
		t.Errorf("%s: "+format+" (see %s.actual.png; accept with FERRY_UPDATE_GOLDEN=1)", append([]any{golden}, append(a, base)...)...)
	}
	if got.Bounds() != want.Bounds() {
		fail("size %v, baseline %v", got.Bounds().Size(), want.Bounds().Size())
		return
	}
	b := got.Bounds()
	diff := image.NewNRGBA(b)
	bad := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r1, g1, b1, _ := got.At(x, y).RGBA()
			r2, g2, b2, _ := want.At(x, y).RGBA()
			if absDiff(r1, r2) > tol.Level || absDiff(g1, g2) > tol.Level || absDiff(b1, b2) > tol.Level {
				bad++
				diff.Pix[diff.PixOffset(x, y)+0] = 255
				diff.Pix[diff.PixOffset(x, y)+3] = 255
			}
		}
	}
	total := b.Dx() * b.Dy()
	if float64(bad) > tol.Ratio*float64(total) {
		var buf bytes.Buffer
		_ = png.Encode(&buf, diff)
		_ = os.WriteFile(base+".diff.png", buf.Bytes(), 0o644)
		fail("%d of %d pixels differ (%.2f%%, tolerance %.2f%%)", bad, total, 100*float64(bad)/float64(total), 100*tol.Ratio)
	}
}

func absDiff(a, b uint32) int {
	d := int(a>>8) - int(b>>8)
	if d < 0 {
		return -d
	}
	return d
}
