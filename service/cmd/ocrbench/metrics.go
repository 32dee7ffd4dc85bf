package main

import (
	"net/http"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// gauge reads one gauge from the service's /metrics on its admin port (0 if it cannot).
func gauge(admin, name string) float64 {
	if admin == "" {
		return 0
	}
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if f := families[name]; err == nil && f != nil && len(f.GetMetric()) == 1 {
		return f.GetMetric()[0].GetGauge().GetValue()
	}
	return 0
}
