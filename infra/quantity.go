package main

import (
	"fmt"
	"strconv"
	"strings"
)

// The configuration's resource quantities, read the way the API server reads them for the forms
// the stacks use ("250m", "1", "1.5"; "384Mi", "1Gi", "500M"): the program derives targets and
// limits from them (the autoscalers' CPU targets, NATS's GOMEMLIMIT) and the sizing test adds
// them up. Other forms (exponents, "Ei") are refused by Config.validate rather than misread.

// milliCPU is a CPU quantity in thousandths of a core.
func milliCPU(q string) (int64, error) {
	if v, ok := strings.CutSuffix(q, "m"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("CPU %q: want cores (1, 0.5) or millicores (250m)", q)
		}
		return n, nil
	}
	f, err := strconv.ParseFloat(q, 64)
	if err != nil || f < 0 || f*1000 != float64(int64(f*1000)) {
		return 0, fmt.Errorf("CPU %q: want cores (1, 0.5) or millicores (250m)", q)
	}
	return int64(f * 1000), nil
}

// byteUnits are the suffixes a memory or storage quantity may carry.
var byteUnits = []struct {
	suffix string
	factor int64
}{
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
	{"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12},
}

// bytesOf is a memory or storage quantity in bytes.
func bytesOf(q string) (int64, error) {
	factor, num := int64(1), q
	for _, u := range byteUnits {
		if v, ok := strings.CutSuffix(q, u.suffix); ok {
			factor, num = u.factor, v
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("quantity %q: want a whole number with Ki, Mi, Gi, Ti, k, M, G, T or none", q)
	}
	return n * factor, nil
}

// millicores writes a CPU quantity the way the API server prints it back ("500m", "2").
func millicores(m int64) string {
	if m%1000 == 0 {
		return strconv.FormatInt(m/1000, 10)
	}
	return strconv.FormatInt(m, 10) + "m"
}
