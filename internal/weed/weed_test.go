package weed

import (
	"os"
	"strings"
	"testing"
)

// scripts/weed.sh builds the version this package looks for.
func TestVersionMatchesScript(t *testing.T) {
	b, err := os.ReadFile("../../scripts/weed.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "\nVERSION="+Version+"\n") {
		t.Errorf("scripts/weed.sh does not build SeaweedFS %s", Version)
	}
}
