package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// readocr:natsSpread: required (each server on a node of its own) unless a stack asks for
// preferred, which only a one-node test cluster does (test/e2e's 3-server cluster on
// minikube); anything else is refused.
func TestNATSSpreadKnob(t *testing.T) {
	pod := "spec.template.spec.affinity.podAntiAffinity"
	sts := renderStack(t, "production", nil).get(t, natsStatefulSet)
	expect(t, sts, map[string]any{pod + ".requiredDuringSchedulingIgnoredDuringExecution.0.topologyKey": "kubernetes.io/hostname"})
	if p := at(t, sts, pod).(map[string]any)["preferredDuringSchedulingIgnoredDuringExecution"]; p != nil {
		t.Errorf("production: preferred anti-affinity %v beside the required one", p)
	}

	sts = renderStack(t, "production", map[string]string{"readocr:natsSpread": "preferred"}).get(t, natsStatefulSet)
	expect(t, sts, map[string]any{
		pod + ".preferredDuringSchedulingIgnoredDuringExecution.0.weight":                      100,
		pod + ".preferredDuringSchedulingIgnoredDuringExecution.0.podAffinityTerm.topologyKey": "kubernetes.io/hostname",
	})
	if r := at(t, sts, pod).(map[string]any)["requiredDuringSchedulingIgnoredDuringExecution"]; r != nil {
		t.Errorf("natsSpread preferred: still required %v", r)
	}

	for key, bad := range map[string]string{"natsSpread": "anywhere", "natsImage": "registry.local/nats"} {
		b, _ := json.Marshal(map[string]string{"readocr:natsReplicas": "3", "readocr:" + key: bad})
		t.Setenv("PULUMI_CONFIG", string(b))
		err := pulumi.RunErr(func(ctx *pulumi.Context) error {
			cfg, err := loadConfig(ctx, version())
			if err != nil {
				return err
			}
			return program(ctx, cfg)
		}, pulumi.WithMocks("readocr", "test", newRecorder()))
		if want := key + ` "` + bad + `"`; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s %s: %v, want refused", key, bad, err)
		}
	}
}

// readocr:natsImage names the servers' image; by default it is NATSImage.
func TestNATSImageKnob(t *testing.T) {
	c := "spec.template.spec.containers.0.image"
	expect(t, renderStack(t, "minikube", nil).get(t, natsStatefulSet), map[string]any{c: NATSImage})
	next := "registry.local/nats:2.15.2-next"
	expect(t, renderStack(t, "minikube", map[string]string{"readocr:natsImage": next}).get(t, natsStatefulSet), map[string]any{c: next})
}
