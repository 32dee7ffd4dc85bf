package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	autoscalingv2 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/autoscaling/v2"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	policyv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/policy/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

const (
	name      = "readocr"
	port      = 4000
	adminPort = 9090  // /metrics and pprof: on the pod, not on the Service
	uid       = 65532 // the image's numeric non-root user

	preStopSeconds  = 5  // endpoints and kube-proxy catch up before the server stops accepting
	shutdownSeconds = 20 // in-flight OCR gets this long after SIGTERM (OCR_SHUTDOWN_TIMEOUT)
	graceSeconds    = preStopSeconds + shutdownSeconds + 5

	// maxImageBytes is the largest image or document (OCR_MAX_IMAGE_BYTES, the service's
	// default): the Gateway's body limit is derived from it (gateway.go).
	maxImageBytes = 20 << 20
)

// Resources are the objects of the workload.
type Resources struct {
	ConfigMap      *corev1.ConfigMap
	ServiceAccount *corev1.ServiceAccount
	Deployment     *appsv1.Deployment // the API: /read_ocr, and POST /jobs, which it queues
	Service        *corev1.Service
	PDB            *policyv1.PodDisruptionBudget
	HPA            *autoscalingv2.HorizontalPodAutoscaler

	Worker    *appsv1.Deployment // runs the queued jobs
	WorkerPDB *policyv1.PodDisruptionBudget
	WorkerHPA *autoscalingv2.HorizontalPodAutoscaler // CPU; none with KEDA
	NATS      *NATS
	Scaler    pulumi.Resource // KEDA's ScaledObject, with KEDA

	Gateway *GatewayResources // with Gateway.Host
}

// settings is the service configuration carried by the ConfigMap. The service reads its
// memory limit from the cgroup and shares it out itself (README, Limits). Jobs live in the
// cluster's NATS: API pods queue them and worker pods run them (OCR_ROLE, per Deployment).
func settings(cfg Config) map[string]string {
	m := map[string]string{
		"OCR_JOBS":     "true",
		"OCR_NATS_URL": natsURL(),
		// Each job's stream, record and data on as many servers as there are, up to three.
		"OCR_NATS_REPLICAS":    fmt.Sprint(min(cfg.NATSReplicas, 3)),
		"OCR_LOG_LEVEL":        cfg.LogLevel,
		"OCR_SHUTDOWN_TIMEOUT": fmt.Sprintf("%ds", shutdownSeconds),
		"OCR_QUEUE_TIMEOUT":    "20s",
		"OCR_MAX_IMAGE_BYTES":  fmt.Sprint(maxImageBytes),
		"OCR_MAX_PIXELS":       "40000000",
		"OCR_ADMIN_PORT":       fmt.Sprint(adminPort),
	}
	apiKeysSettings(cfg, m)
	natsTLSSettings(cfg, m)
	return m
}

// role is one of the two Deployments of the same image.
type role struct {
	name       string // the Deployment's
	component  string // app.kubernetes.io/component and OCR_ROLE
	cpuRequest string
}

// builder declares the objects of one stack.
type builder struct {
	ctx     *pulumi.Context
	cfg     Config
	opts    []pulumi.ResourceOption
	version string
}

// The API's selector is the one readocr has always had (a Deployment's selector cannot
// change); the workers differ in their instance.
func (b *builder) selector(r role) pulumi.StringMap {
	return pulumi.StringMap{"app.kubernetes.io/name": pulumi.String(name), "app.kubernetes.io/instance": pulumi.String(r.name)}
}

func (b *builder) labels(r role) pulumi.StringMap {
	return pulumi.StringMap{
		"app.kubernetes.io/name":      pulumi.String(name),
		"app.kubernetes.io/instance":  pulumi.String(r.name),
		"app.kubernetes.io/version":   pulumi.String(b.version),
		"app.kubernetes.io/component": pulumi.String(r.component),
		"app.kubernetes.io/part-of":   pulumi.String(name),
	}
}

func (b *builder) meta(r role) *metav1.ObjectMetaArgs {
	return &metav1.ObjectMetaArgs{Name: pulumi.String(r.name), Labels: b.labels(r)}
}

// Workload declares readocr: the ConfigMap and ServiceAccount; the API Deployment with its
// Service, PodDisruptionBudget and HorizontalPodAutoscaler; the worker Deployment with its own
// (or KEDA's ScaledObject); NATS; the Gateway API route. The objects carry no namespace, so
// the rendered manifests apply into whatever namespace kubectl is given.
func Workload(ctx *pulumi.Context, cfg Config, image pulumi.StringOutput, opts ...pulumi.ResourceOption) (*Resources, error) {
	b := &builder{ctx: ctx, cfg: cfg, opts: opts, version: cfg.Version}
	api := role{name: name, component: "api", cpuRequest: cfg.CPURequest}
	worker := role{name: name + "-worker", component: "worker", cpuRequest: cfg.WorkerCPURequest}
	r := &Resources{}
	var err error

	data := settings(cfg)
	if r.ConfigMap, err = corev1.NewConfigMap(ctx, name, &corev1.ConfigMapArgs{
		Metadata: b.meta(api), Data: pulumi.ToStringMap(data),
	}, opts...); err != nil {
		return nil, err
	}
	if r.ServiceAccount, err = corev1.NewServiceAccount(ctx, name, &corev1.ServiceAccountArgs{
		Metadata:                     b.meta(api),
		AutomountServiceAccountToken: pulumi.Bool(false), // the service never talks to the API server
	}, opts...); err != nil {
		return nil, err
	}
	if r.NATS, err = natsResources(ctx, cfg, opts...); err != nil {
		return nil, err
	}
	keys, err := accessResources(ctx, cfg, b.labels(api), opts...)
	if err != nil {
		return nil, err
	}
	if err := natsTLSSecretResource(ctx, cfg, b.labels(api), opts...); err != nil {
		return nil, err
	}
	if len(cfg.APIKeys) > 0 {
		ctx.Export("apiKeys", keys) // pulumi stack output --show-secrets apiKeys
	}
	for _, ro := range []role{api, worker} {
		if err := b.networkPolicy(ro); err != nil {
			return nil, err
		}
	}
	if r.Deployment, err = b.deployment(api, image, hash(data)); err != nil {
		return nil, err
	}
	if r.Worker, err = b.deployment(worker, image, hash(data)); err != nil {
		return nil, err
	}
	if r.Service, err = b.service(api); err != nil {
		return nil, err
	}
	if r.PDB, err = b.pdb(api); err != nil {
		return nil, err
	}
	if r.WorkerPDB, err = b.pdb(worker); err != nil {
		return nil, err
	}
	if r.HPA, err = b.hpa(api, cfg.MinReplicas, cfg.MaxReplicas); err != nil {
		return nil, err
	}
	// With KEDA the ScaledObject makes the workers' autoscaler itself: one of ours as well
	// would fight it on every `pulumi up`.
	if cfg.KEDA {
		r.Scaler, err = scaledObject(ctx, cfg, worker.name, b.labels(worker), r.NATS, opts...)
	} else {
		r.WorkerHPA, err = b.hpa(worker, cfg.WorkerMinReplicas, cfg.WorkerMaxReplicas)
	}
	if err != nil {
		return nil, err
	}
	if cfg.Gateway.Host != "" {
		if r.Gateway, err = gatewayResources(ctx, cfg.Gateway, b.labels(api), r.Service, opts...); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (b *builder) deployment(ro role, image pulumi.StringOutput, configHash string) (*appsv1.Deployment, error) {
	return appsv1.NewDeployment(b.ctx, ro.name, &appsv1.DeploymentArgs{
		Metadata: b.meta(ro),
		Spec: &appsv1.DeploymentSpecArgs{
			// No replicas: the autoscaler owns the count. A re-apply or `pulumi up` that set it
			// would reset what the autoscaler chose (README: upgrading from a release that set it).
			RevisionHistoryLimit: pulumi.Int(5),
			Selector:             &metav1.LabelSelectorArgs{MatchLabels: b.selector(ro)},
			// Never below capacity during a rollout: one extra pod first, then one old pod goes.
			Strategy: &appsv1.DeploymentStrategyArgs{
				Type: pulumi.String("RollingUpdate"),
				RollingUpdate: &appsv1.RollingUpdateDeploymentArgs{
					MaxSurge: pulumi.Int(1), MaxUnavailable: pulumi.Int(0),
				},
			},
			Template: podTemplate(ro, b.labels(ro), b.selector(ro), image, configHash, b.cfg),
		},
	}, b.opts...)
}

func (b *builder) service(api role) (*corev1.Service, error) {
	svcPort := &corev1.ServicePortArgs{
		Name: pulumi.String("http"), Port: pulumi.Int(port), TargetPort: pulumi.String("http"), Protocol: pulumi.String("TCP"),
	}
	if b.cfg.ServiceType == "NodePort" && b.cfg.NodePort != 0 {
		svcPort.NodePort = pulumi.Int(b.cfg.NodePort)
	}
	return corev1.NewService(b.ctx, name, &corev1.ServiceArgs{
		Metadata: b.meta(api),
		Spec: &corev1.ServiceSpecArgs{
			Type:     pulumi.String(b.cfg.ServiceType),
			Selector: b.selector(api),
			Ports:    corev1.ServicePortArray{svcPort},
		},
	}, b.opts...)
}

// pdb lets voluntary disruptions (node drains) take at most one pod at a time.
func (b *builder) pdb(ro role) (*policyv1.PodDisruptionBudget, error) {
	return policyv1.NewPodDisruptionBudget(b.ctx, ro.name, &policyv1.PodDisruptionBudgetArgs{
		Metadata: b.meta(ro),
		Spec: &policyv1.PodDisruptionBudgetSpecArgs{
			MaxUnavailable: pulumi.Int(1),
			Selector:       &metav1.LabelSelectorArgs{MatchLabels: b.selector(ro)},
		},
	}, b.opts...)
}

// cpuTarget is the autoscalers' target: the pods' average CPU use, in percent of the CPU limit.
// OCR is CPU-bound and a busy pod uses its whole limit (one OCR worker per CPU of it). A
// percentage of the request ("Utilization") would read a busy pod as limit/request times the
// target (1 CPU against 125m: 800 %), and one busy pod sent the count to its maximum; against
// the limit, the count grows with the work: ceil(pods x average / target). Half: a request then
// waits for about one page in the queue on average (rho / (1 - rho) pages for a single worker),
// 2.3 pages at 70 %; and pods sharing a small node's CPUs still reach it.
const cpuTarget = 50

// cpuTargetValue is cpuTarget of the CPU limit, as an average value ("500m" for a 1-CPU limit).
func cpuTargetValue(cfg Config) string {
	limit, _ := milliCPU(cfg.CPULimit) // validated
	return millicores(limit * cpuTarget / 100)
}

// hpa scales a Deployment on CPU (needs metrics-server: minikube addons enable metrics-server).
func (b *builder) hpa(ro role, lo, hi int) (*autoscalingv2.HorizontalPodAutoscaler, error) {
	return autoscalingv2.NewHorizontalPodAutoscaler(b.ctx, ro.name, &autoscalingv2.HorizontalPodAutoscalerArgs{
		Metadata: b.meta(ro),
		Spec: &autoscalingv2.HorizontalPodAutoscalerSpecArgs{
			ScaleTargetRef: &autoscalingv2.CrossVersionObjectReferenceArgs{
				ApiVersion: pulumi.String("apps/v1"), Kind: pulumi.String("Deployment"), Name: pulumi.String(ro.name),
			},
			MinReplicas: pulumi.Int(lo),
			MaxReplicas: pulumi.Int(hi),
			Metrics: autoscalingv2.MetricSpecArray{&autoscalingv2.MetricSpecArgs{
				Type: pulumi.String("Resource"),
				Resource: &autoscalingv2.ResourceMetricSourceArgs{
					Name:   pulumi.String("cpu"),
					Target: &autoscalingv2.MetricTargetArgs{Type: pulumi.String("AverageValue"), AverageValue: pulumi.String(cpuTargetValue(b.cfg))},
				},
			}},
		},
	}, b.opts...)
}

func hash(m map[string]string) string {
	b, _ := json.Marshal(m) // map keys are sorted
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
