package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func TestNATS(t *testing.T) {
	rec := render(t, DefaultConfig("0.1.0"))
	sts := rec.get(t, natsStatefulSet)
	pod, c := "spec.template.spec", "spec.template.spec.containers.0"
	expect(t, sts, map[string]any{
		"spec.replicas":                 1,
		"spec.serviceName":              "readocr-nats-headless",
		"spec.podManagementPolicy":      "Parallel",
		c + ".image":                    NATSImage,
		c + ".args.1":                   "/etc/nats/nats.conf",
		c + ".volumeMounts.0.mountPath": "/data",
		// The volume is a real claim, never an emptyDir: jobs survive the pod.
		"spec.volumeClaimTemplates.0.metadata.name":                   "data",
		"spec.volumeClaimTemplates.0.spec.resources.requests.storage": "1Gi",
		"spec.volumeClaimTemplates.0.spec.accessModes.0":              "ReadWriteOnce",
		// Restricted Pod Security.
		pod + ".securityContext.runAsNonRoot":           true,
		pod + ".securityContext.seccompProfile.type":    "RuntimeDefault",
		pod + ".automountServiceAccountToken":           false,
		c + ".securityContext.allowPrivilegeEscalation": false,
		c + ".securityContext.capabilities.drop.0":      "ALL",
		c + ".securityContext.readOnlyRootFilesystem":   true,
		// The minikube stack's resources, and GOMEMLIMIT at 80 % of the memory limit.
		c + ".resources.requests.cpu":               "50m",
		c + ".resources.requests.memory":            "64Mi",
		c + ".resources.requests.ephemeral-storage": "32Mi",
		c + ".resources.limits.cpu":                 "500m",
		c + ".resources.limits.memory":              "256Mi",
		c + ".resources.limits.ephemeral-storage":   "128Mi",
		c + ".env.1.name":                           "GOMEMLIMIT",
		c + ".env.1.value":                          "204MiB",
	})
	// Three probes, three questions: started (streams recovered, caught up), ready (JetStream
	// on), alive (the server answers), the last one less often.
	expect(t, sts, map[string]any{
		c + ".startupProbe.httpGet.path":   "/healthz",
		c + ".readinessProbe.httpGet.path": "/healthz?js-enabled-only=true",
		c + ".livenessProbe.httpGet.path":  "/healthz?js-server-only=true",
	})
	if at(t, sts, c+".livenessProbe.periodSeconds").(float64) <= at(t, sts, c+".readinessProbe.periodSeconds").(float64) {
		t.Error("liveness is probed as often as readiness")
	}
	// Lame duck before SIGTERM, within the grace period.
	expect(t, sts, map[string]any{
		c + ".lifecycle.preStop.exec.command":  "[/nats-server --signal ldm=/var/run/nats/nats.pid]",
		pod + ".terminationGracePeriodSeconds": natsGraceSeconds,
	})
	if natsGraceSeconds < natsLameDuckDuration+10 {
		t.Errorf("grace period %d s for a lame duck of %d s", natsGraceSeconds, natsLameDuckDuration)
	}
	mounts := fmt.Sprint(at(t, sts, c+".volumeMounts"))
	if !strings.Contains(mounts, "mountPath:/var/run/nats") {
		t.Errorf("no writable directory for the pid file: %s", mounts)
	}
	// One server on one node: nothing may keep it from scheduling.
	spec := at(t, sts, pod).(map[string]any)
	if spec["affinity"] != nil || spec["topologySpreadConstraints"] != nil {
		t.Errorf("a single server with placement rules: %v %v", spec["affinity"], spec["topologySpreadConstraints"])
	}

	// The claim template never changes: no version label, and Pulumi leaves it alone.
	claimLabels := at(t, sts, "spec.volumeClaimTemplates.0.metadata.labels").(map[string]any)
	if _, ok := claimLabels["app.kubernetes.io/version"]; ok {
		t.Error("the claim template carries the version: the next upgrade is refused (spec: Forbidden)")
	}
	if !slices.Contains(rec.ignored[natsStatefulSet], "spec.volumeClaimTemplates") {
		t.Errorf("Pulumi would replace the StatefulSet when the claim template changes; ignored: %v", rec.ignored[natsStatefulSet])
	}

	conf := natsConf(t, rec)
	for _, want := range []string{"store_dir: /data", "http_port: 8222", "server_name: $POD_NAME",
		"pid_file: /var/run/nats/nats.pid", "lame_duck_duration: 30s", "lame_duck_grace_period: 10s"} {
		if !strings.Contains(conf, want) {
			t.Errorf("nats.conf lacks %q:\n%s", want, conf)
		}
	}
	for _, bad := range []string{"cluster", "max_file_store"} {
		if strings.Contains(conf, bad) {
			t.Errorf("nats.conf has %s:\n%s", bad, conf)
		}
	}
	expect(t, rec.get(t, "kubernetes:core/v1:Service/readocr-nats-headless"), map[string]any{
		"spec.clusterIP": "None", "spec.publishNotReadyAddresses": true,
	})
}

// NATS is reachable from readocr's pods only (client and route ports), and its monitoring
// port from KEDA's namespace only.
func TestNATSNetworkPolicy(t *testing.T) {
	np := render(t, DefaultConfig("0.1.0")).get(t, natsPolicy)
	expect(t, np, map[string]any{
		"spec.policyTypes.0":          "Ingress",
		"spec.ingress.0.ports.0.port": 4222,
		"spec.ingress.0.ports.1.port": 6222,
		"spec.ingress.1.ports.0.port": 8222,
	})
	if got := at(t, np, "spec.ingress.0.from.0.podSelector.matchLabels").(map[string]any); len(got) != 1 || got["app.kubernetes.io/part-of"] != "readocr" {
		t.Errorf("NATS clients: %v", got)
	}
	if got := at(t, np, "spec.ingress.1.from.0.namespaceSelector.matchLabels").(map[string]any); got["kubernetes.io/metadata.name"] != "keda" {
		t.Errorf("monitoring clients: %v", got)
	}
	if len(at(t, np, "spec.ingress").([]any)) != 2 {
		t.Error("NATS admits more than readocr's pods and KEDA")
	}
}

// The production stack runs three servers, each on a node of its own, that find each other by
// their stable names, and keeps three copies of each job.
func TestNATSCluster(t *testing.T) {
	rec := renderStack(t, "production", nil)
	sts := rec.get(t, natsStatefulSet)
	pod, c := "spec.template.spec", "spec.template.spec.containers.0"
	expect(t, sts, map[string]any{
		"spec.replicas": 3,
		pod + ".affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution.0.topologyKey": "kubernetes.io/hostname",
		pod + ".topologySpreadConstraints.0.topologyKey":                                               "topology.kubernetes.io/zone",
		c + ".resources.requests.memory":                                                               "1Gi",
		c + ".resources.limits.memory":                                                                 "1Gi",
		c + ".env.1.value":                                                                             "819MiB",
	})
	apart := at(t, sts, pod+".affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution.0.labelSelector.matchLabels")
	if fmt.Sprint(apart) != fmt.Sprint(natsSelector) {
		t.Errorf("anti-affinity selects %v, want the servers (%v)", apart, natsSelector)
	}
	expect(t, rec.get(t, configMap), map[string]any{"data.OCR_NATS_REPLICAS": "3"})
	conf := natsConf(t, rec)
	for i := range 3 {
		route := fmt.Sprintf("nats://readocr-nats-%d.readocr-nats-headless:6222", i)
		if !strings.Contains(conf, route) {
			t.Errorf("nats.conf lacks the route %s:\n%s", route, conf)
		}
	}
	for _, bad := range []int{0, 2, 4} {
		c := DefaultConfig("0.1.0")
		c.NATSReplicas = bad
		if c.validate() == nil {
			t.Errorf("natsReplicas %d accepted: JetStream needs a majority", bad)
		}
	}
	// Each stack sizes its own servers.
	staging := at(t, renderStack(t, "staging", nil).get(t, natsStatefulSet), c+".resources")
	minikube := at(t, render(t, DefaultConfig("0.1.0")).get(t, natsStatefulSet), c+".resources")
	if fmt.Sprint(staging) == fmt.Sprint(minikube) || fmt.Sprint(staging) == fmt.Sprint(at(t, sts, c+".resources")) {
		t.Errorf("NATS has the same resources on every stack: %v", staging)
	}
}

func natsConf(t *testing.T, rec *recorder) string {
	t.Helper()
	s, _ := at(t, rec.get(t, natsConfigMap), "data").(map[string]any)["nats.conf"].(string)
	return s
}

// nats-server itself reads the rendered configuration (its own parser, as the pod's server
// does), one server and the production cluster of three.
func TestNATSConfigParses(t *testing.T) {
	t.Setenv("POD_NAME", "readocr-nats-1")
	// production's servers ask for a user (access.go): the Secret's variables.
	t.Setenv("OCR_NATS_USER", "readocr")
	t.Setenv("OCR_NATS_PASSWORD", "a-password")
	for stack, servers := range map[string]int{"minikube": 1, "production": 3} {
		file := filepath.Join(t.TempDir(), "nats.conf")
		rec := renderStack(t, stack, nil)
		conf := natsConf(t, rec)
		if stack == "production" { // its certificate, where this machine has it
			conf, _ = tlsFilesFor(t, rec, conf)
		}
		os.WriteFile(file, []byte(conf), 0o644)
		opts, err := server.ProcessConfigFile(file)
		if err != nil {
			t.Fatalf("%s: nats-server refuses its configuration: %v", stack, err)
		}
		if opts.ServerName != "readocr-nats-1" || !opts.JetStream || opts.StoreDir != "/data" || opts.HTTPPort != 8222 || opts.Port != 4222 {
			t.Errorf("%s: %+v", stack, opts)
		}
		if opts.PidFile != natsPidDir+"/nats.pid" || opts.LameDuckDuration != natsLameDuckDuration*time.Second ||
			opts.LameDuckGracePeriod != natsLameDuckGrace*time.Second {
			t.Errorf("%s: pid file %q, lame duck %v, grace %v", stack, opts.PidFile, opts.LameDuckDuration, opts.LameDuckGracePeriod)
		}
		// Unset: the server takes its limit from the disk it finds.
		if opts.JetStreamMaxStore != 0 {
			t.Errorf("%s: file store limit %d set in the configuration", stack, opts.JetStreamMaxStore)
		}
		if servers == 1 && (opts.Cluster.Port != 0 || len(opts.Routes) != 0) {
			t.Errorf("%s: a cluster of one", stack)
		}
		if servers == 3 && (opts.Cluster.Name != "readocr" || opts.Cluster.Port != 6222 || len(opts.Routes) != 3) {
			t.Errorf("%s: cluster %+v, routes %v", stack, opts.Cluster, opts.Routes)
		}
	}
}
