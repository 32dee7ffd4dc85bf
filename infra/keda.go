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
	// jobsPerWorker is the backlog a worker pod takes: its OCR_JOB_CONCURRENCY (2 x 1 worker)
	// and as many waiting.
	jobsPerWorker = 4
)

// scaledObject scales the workers on the jobs waiting in JetStream (KEDA's nats-jetstream
// scaler) and on CPU, from zero backlog to WorkerMaxReplicas. It takes over the worker's CPU
// autoscaler (transfer-hpa-ownership) rather than fight it: `kubectl apply -f manifests` works
// without KEDA, and `kubectl apply -f manifests/keda` adds it.
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
				"minReplicaCount": pulumi.Int(cfg.WorkerMinReplicas),
				"maxReplicaCount": pulumi.Int(cfg.WorkerMaxReplicas),
				"advanced": pulumi.Map{
					"horizontalPodAutoscalerConfig": pulumi.Map{"name": pulumi.String(target)},
				},
				"triggers": pulumi.Array{
					pulumi.Map{
						"type": pulumi.String("nats-jetstream"),
						"metadata": pulumi.Map{
							"natsServerMonitoringEndpoint": endpoint,
							"account":                      pulumi.String("$G"),
							"stream":                       pulumi.String(jobsStream),
							"consumer":                     pulumi.String(jobsConsumer),
							"lagThreshold":                 pulumi.String(fmt.Sprint(jobsPerWorker)),
						},
					},
					pulumi.Map{
						"type":       pulumi.String("cpu"),
						"metricType": pulumi.String("Utilization"),
						"metadata":   pulumi.Map{"value": pulumi.String(fmt.Sprint(cpuTarget))},
					},
				},
			},
		},
	}, append(opts, pulumi.DependsOn([]pulumi.Resource{n.Service}))...)
}
