package main

import (
	"fmt"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Names of the jobs' stream and consumer in JetStream (service/internal/jobs).
const (
	jobsStream   = "READOCR_JOBS"
	jobsConsumer = "workers"
	// pagesConsumer takes a long document's page tasks (pages as tasks): a second trigger, so
	// that pages waiting start workers as jobs waiting do (KEDA scales on the larger).
	pagesConsumer = "page-workers"
	// jobsPerWorker is the backlog a worker pod takes: its OCR_JOB_CONCURRENCY (2 x 1 worker)
	// and as many waiting.
	jobsPerWorker = 4
)

// KEDA's timing: how often the operator reads the backlog (a job queued while no worker runs
// waits up to this, then a pod's start), and how long the backlog stays empty before the last
// worker stops.
const (
	kedaPollingSeconds  = 10
	kedaCooldownSeconds = 300
	kedaFallbackAfter   = 3 // failed reads of the backlog, then running workers are held at 1
)

// scaledObject scales the workers on the jobs in JetStream (KEDA's nats-jetstream scaler),
// from none to WorkerMaxReplicas: the scaler's lag is the consumer's pending jobs plus those
// delivered and not yet acknowledged (running), so a worker is not stopped under a running job,
// and the first queued job wakes the Deployment from zero. The queue, not CPU, is the measure
// of the workers' work. KEDA makes the HorizontalPodAutoscaler itself, under the name the
// CPU autoscaler of manifests/ has: over `kubectl apply -f manifests`, KEDA takes that one
// over (transfer-hpa-ownership) rather than run a second on the same Deployment; a Pulumi stack
// with keda makes no CPU autoscaler for the workers.
func scaledObject(ctx *pulumi.Context, cfg Config, target string, labels pulumi.StringMap, n *NATS, opts ...pulumi.ResourceOption) (pulumi.Resource, error) {
	// KEDA's operator asks from its own namespace: the endpoint names this one.
	endpoint := n.Service.Metadata.Namespace().ApplyT(func(ns *string) string {
		if ns == nil || *ns == "" {
			return fmt.Sprintf("%s.default.svc.cluster.local:%d", natsName, natsMonitor)
		}
		return fmt.Sprintf("%s.%s.svc.cluster.local:%d", natsName, *ns, natsMonitor)
	}).(pulumi.StringOutput)
	return apiextensions.NewCustomResource(ctx, target, &apiextensions.CustomResourceArgs{
		ApiVersion: pulumi.String("keda.sh/v1alpha1"),
		Kind:       pulumi.String("ScaledObject"),
		Metadata: &metav1.ObjectMetaArgs{
			Name:        pulumi.String(target),
			Labels:      labels,
			Annotations: pulumi.StringMap{"scaledobject.keda.sh/transfer-hpa-ownership": pulumi.String("true")},
		},
		OtherFields: kubernetes.UntypedArgs{
			"spec": pulumi.Map{
				"scaleTargetRef":  pulumi.Map{"name": pulumi.String(target)},
				"minReplicaCount": pulumi.Int(0),
				"maxReplicaCount": pulumi.Int(cfg.WorkerMaxReplicas),
				"pollingInterval": pulumi.Int(kedaPollingSeconds),
				"cooldownPeriod":  pulumi.Int(kedaCooldownSeconds),
				// Where the backlog cannot be read (NATS's monitoring port unreachable), running
				// workers are not stopped and one keeps taking jobs; from zero nothing starts one
				// until the backlog reads again (the HPA leaves a target at zero alone).
				"fallback": pulumi.Map{"failureThreshold": pulumi.Int(kedaFallbackAfter), "replicas": pulumi.Int(1)},
				"advanced": pulumi.Map{
					"horizontalPodAutoscalerConfig": pulumi.Map{"name": pulumi.String(target)},
				},
				"triggers": pulumi.Array{
					backlogTrigger(endpoint, jobsConsumer), backlogTrigger(endpoint, pagesConsumer),
				},
			},
		},
	}, append(opts, pulumi.DependsOn([]pulumi.Resource{n.Service}))...)
}

// backlogTrigger is KEDA's nats-jetstream trigger on one consumer of the jobs' stream.
func backlogTrigger(endpoint pulumi.StringOutput, consumer string) pulumi.Map {
	return pulumi.Map{
		"type": pulumi.String("nats-jetstream"),
		"metadata": pulumi.Map{
			"natsServerMonitoringEndpoint": endpoint,
			"account":                      pulumi.String("$G"),
			"stream":                       pulumi.String(jobsStream),
			"consumer":                     pulumi.String(consumer),
			"lagThreshold":                 pulumi.String(fmt.Sprint(jobsPerWorker)),
			"activationLagThreshold":       pulumi.String("0"),
		},
	}
}
