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
	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
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
)

// Resources are the objects of the workload.
type Resources struct {
	ConfigMap      *corev1.ConfigMap
	ServiceAccount *corev1.ServiceAccount
	Deployment     *appsv1.Deployment // the API: /read_ocr, and POST /jobs, which it queues
	Service        *corev1.Service
	PDB            *policyv1.PodDisruptionBudget
	HPA            *autoscalingv2.HorizontalPodAutoscaler
	Ingress        *networkingv1.Ingress // with IngressHost

	Worker    *appsv1.Deployment // runs the queued jobs
	WorkerPDB *policyv1.PodDisruptionBudget
	WorkerHPA *autoscalingv2.HorizontalPodAutoscaler // CPU; KEDA takes it over (manifests/keda)
	NATS      *NATS
	Scaler    pulumi.Resource // KEDA's ScaledObject, with KEDA
}

// settings is the service configuration carried by the ConfigMap. The service reads its
// memory limit from the cgroup and shares it out itself (README, Limits). Jobs live in the
// cluster's NATS: API pods queue them and worker pods run them (OCR_ROLE, per Deployment).
func settings(cfg Config) map[string]string {
	return map[string]string{
		"OCR_JOBS":             "true",
		"OCR_NATS_URL":         natsURL(),
		"OCR_NATS_REPLICAS":    fmt.Sprint(min(cfg.NATSReplicas, 3)),
		"OCR_LOG_LEVEL":        cfg.LogLevel,
		"OCR_SHUTDOWN_TIMEOUT": "20s",
		"OCR_QUEUE_TIMEOUT":    "20s",
		"OCR_MAX_IMAGE_BYTES":  "20971520",
		"OCR_MAX_PIXELS":       "40000000",
		"OCR_ADMIN_PORT":       "9090",
	}
}

// role is one of the two Deployments of the same image.
type role struct {
	name       string // the Deployment's
	component  string // app.kubernetes.io/component and OCR_ROLE
	cpuRequest string
}

// Workload declares readocr: the ConfigMap and ServiceAccount; the API Deployment with its
// Service, PodDisruptionBudget and HorizontalPodAutoscaler; the worker Deployment with its own;
// NATS. The objects carry no namespace, so the rendered manifests apply into whatever namespace
// kubectl is given.
func Workload(ctx *pulumi.Context, cfg Config, image pulumi.StringOutput, opts ...pulumi.ResourceOption) (*Resources, error) {
	version := cfg.Version
	api := role{name: name, component: "api", cpuRequest: cfg.CPURequest}
	worker := role{name: name + "-worker", component: "worker", cpuRequest: cfg.WorkerCPURequest}
	// The API's selector is the one readocr has always had (a Deployment's selector cannot
	// change); the workers differ in their instance.
	selector := func(r role) pulumi.StringMap {
		return pulumi.StringMap{"app.kubernetes.io/name": pulumi.String(name), "app.kubernetes.io/instance": pulumi.String(r.name)}
	}
	labelsOf := func(r role) pulumi.StringMap {
		return pulumi.StringMap{
			"app.kubernetes.io/name":      pulumi.String(name),
			"app.kubernetes.io/instance":  pulumi.String(r.name),
			"app.kubernetes.io/version":   pulumi.String(version),
			"app.kubernetes.io/component": pulumi.String(r.component),
			"app.kubernetes.io/part-of":   pulumi.String(name),
		}
	}
	meta := func(r role) *metav1.ObjectMetaArgs {
		return &metav1.ObjectMetaArgs{Name: pulumi.String(r.name), Labels: labelsOf(r)}
	}
	r := &Resources{}
	var err error

	data := settings(cfg)
	r.ConfigMap, err = corev1.NewConfigMap(ctx, name, &corev1.ConfigMapArgs{
		Metadata: meta(api),
		Data:     pulumi.ToStringMap(data),
	}, opts...)
	if err != nil {
		return nil, err
	}

	r.ServiceAccount, err = corev1.NewServiceAccount(ctx, name, &corev1.ServiceAccountArgs{
		Metadata:                     meta(api),
		AutomountServiceAccountToken: pulumi.Bool(false), // the service never talks to the API server
	}, opts...)
	if err != nil {
		return nil, err
	}

	if r.NATS, err = natsResources(ctx, cfg, opts...); err != nil {
		return nil, err
	}

	deployment := func(ro role) (*appsv1.Deployment, error) {
		return appsv1.NewDeployment(ctx, ro.name, &appsv1.DeploymentArgs{
			Metadata: meta(ro),
			Spec: &appsv1.DeploymentSpecArgs{
				// No replicas: the HorizontalPodAutoscaler owns the count. A re-apply or `pulumi up`
				// that set it would reset what the autoscaler chose.
				RevisionHistoryLimit: pulumi.Int(5),
				Selector:             &metav1.LabelSelectorArgs{MatchLabels: selector(ro)},
				// Never below capacity during a rollout: one extra pod first, then one old pod goes.
				Strategy: &appsv1.DeploymentStrategyArgs{
					Type: pulumi.String("RollingUpdate"),
					RollingUpdate: &appsv1.RollingUpdateDeploymentArgs{
						MaxSurge: pulumi.Int(1), MaxUnavailable: pulumi.Int(0),
					},
				},
				Template: podTemplate(ro, labelsOf(ro), selector(ro), image, hash(data), cfg),
			},
		}, opts...)
	}
	if r.Deployment, err = deployment(api); err != nil {
		return nil, err
	}
	if r.Worker, err = deployment(worker); err != nil {
		return nil, err
	}

	svcPort := &corev1.ServicePortArgs{
		Name: pulumi.String("http"), Port: pulumi.Int(port), TargetPort: pulumi.String("http"), Protocol: pulumi.String("TCP"),
	}
	if cfg.ServiceType == "NodePort" && cfg.NodePort != 0 {
		svcPort.NodePort = pulumi.Int(cfg.NodePort)
	}
	r.Service, err = corev1.NewService(ctx, name, &corev1.ServiceArgs{
		Metadata: meta(api),
		Spec: &corev1.ServiceSpecArgs{
			Type:     pulumi.String(cfg.ServiceType),
			Selector: selector(api),
			Ports:    corev1.ServicePortArray{svcPort},
		},
	}, opts...)
	if err != nil {
		return nil, err
	}

	// Voluntary disruptions (node drains) take at most one pod at a time.
	pdb := func(ro role) (*policyv1.PodDisruptionBudget, error) {
		return policyv1.NewPodDisruptionBudget(ctx, ro.name, &policyv1.PodDisruptionBudgetArgs{
			Metadata: meta(ro),
			Spec: &policyv1.PodDisruptionBudgetSpecArgs{
				MaxUnavailable: pulumi.Int(1),
				Selector:       &metav1.LabelSelectorArgs{MatchLabels: selector(ro)},
			},
		}, opts...)
	}
	if r.PDB, err = pdb(api); err != nil {
		return nil, err
	}
	if r.WorkerPDB, err = pdb(worker); err != nil {
		return nil, err
	}

	// OCR is CPU-bound: scale on CPU (needs metrics-server: minikube addons enable metrics-server).
	hpa := func(ro role, lo, hi int) (*autoscalingv2.HorizontalPodAutoscaler, error) {
		return autoscalingv2.NewHorizontalPodAutoscaler(ctx, ro.name, &autoscalingv2.HorizontalPodAutoscalerArgs{
			Metadata: meta(ro),
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
						Target: &autoscalingv2.MetricTargetArgs{Type: pulumi.String("Utilization"), AverageUtilization: pulumi.Int(cpuTarget)},
					},
				}},
			},
		}, opts...)
	}
	if r.HPA, err = hpa(api, cfg.MinReplicas, cfg.MaxReplicas); err != nil {
		return nil, err
	}
	if r.WorkerHPA, err = hpa(worker, cfg.WorkerMinReplicas, cfg.WorkerMaxReplicas); err != nil {
		return nil, err
	}
	if cfg.KEDA {
		if r.Scaler, err = scaledObject(ctx, cfg, worker.name, labelsOf(worker), r.NATS, opts...); err != nil {
			return nil, err
		}
	}

	if cfg.IngressHost != "" {
		pathType := pulumi.String("Prefix")
		r.Ingress, err = networkingv1.NewIngress(ctx, name, &networkingv1.IngressArgs{
			Metadata: meta(api),
			Spec: &networkingv1.IngressSpecArgs{
				IngressClassName: pulumi.String(cfg.IngressClass),
				Rules: networkingv1.IngressRuleArray{&networkingv1.IngressRuleArgs{
					Host: pulumi.String(cfg.IngressHost),
					Http: &networkingv1.HTTPIngressRuleValueArgs{Paths: networkingv1.HTTPIngressPathArray{&networkingv1.HTTPIngressPathArgs{
						Path: pulumi.String("/"), PathType: pathType,
						Backend: &networkingv1.IngressBackendArgs{Service: &networkingv1.IngressServiceBackendArgs{
							Name: pulumi.String(name), Port: &networkingv1.ServiceBackendPortArgs{Name: pulumi.String("http")},
						}},
					}}},
				}},
			},
		}, opts...)
		if err != nil {
			return nil, err
		}
	}
	return r, nil
}

// cpuTarget is the autoscalers' CPU utilisation target, in percent of the request.
const cpuTarget = 70

// podTemplate is the pod of both Deployments: the same image and settings, told its role.
func podTemplate(ro role, labels, selector pulumi.StringMap, image pulumi.StringOutput, configHash string, cfg Config) *corev1.PodTemplateSpecArgs {
	probe := func(path string, period, failures int) *corev1.ProbeArgs {
		return &corev1.ProbeArgs{
			HttpGet:          &corev1.HTTPGetActionArgs{Path: pulumi.String(path), Port: pulumi.String("http")},
			PeriodSeconds:    pulumi.Int(period),
			TimeoutSeconds:   pulumi.Int(2),
			FailureThreshold: pulumi.Int(failures),
		}
	}
	c := &corev1.ContainerArgs{
		Name:            pulumi.String(name),
		Image:           image,
		ImagePullPolicy: pulumi.String("IfNotPresent"),
		Ports: corev1.ContainerPortArray{
			&corev1.ContainerPortArgs{Name: pulumi.String("http"), ContainerPort: pulumi.Int(port), Protocol: pulumi.String("TCP")},
			&corev1.ContainerPortArgs{Name: pulumi.String("admin"), ContainerPort: pulumi.Int(adminPort), Protocol: pulumi.String("TCP")},
		},
		EnvFrom: corev1.EnvFromSourceArray{
			&corev1.EnvFromSourceArgs{ConfigMapRef: &corev1.ConfigMapEnvSourceArgs{Name: pulumi.String(name)}},
			// OCR_WEBHOOK_SECRET, which signs job callbacks; without it callbacks are refused
			// (README, Jobs): kubectl create secret generic readocr-webhook --from-literal=...
			&corev1.EnvFromSourceArgs{SecretRef: &corev1.SecretEnvSourceArgs{Name: pulumi.String(webhookSecret), Optional: pulumi.Bool(true)}},
		},
		// One OCR worker per CPU of the limit; Go's scheduler sized the same way.
		Env: corev1.EnvVarArray{
			cpuEnv("OCR_WORKERS"),
			cpuEnv("GOMAXPROCS"),
			&corev1.EnvVarArgs{Name: pulumi.String("OCR_ROLE"), Value: pulumi.String(ro.component)},
		},
		Resources: &corev1.ResourceRequirementsArgs{
			Requests: pulumi.StringMap{"cpu": pulumi.String(ro.cpuRequest), "memory": pulumi.String(cfg.MemRequest)},
			Limits:   pulumi.StringMap{"cpu": pulumi.String(cfg.CPULimit), "memory": pulumi.String(cfg.MemLimit)},
		},
		// Models load in well under a second; allow a slow node 60 s.
		StartupProbe:   probe("/readyz", 1, 60),
		ReadinessProbe: probe("/readyz", 2, 2),
		LivenessProbe:  probe("/healthz", 10, 3),
		SecurityContext: &corev1.SecurityContextArgs{
			AllowPrivilegeEscalation: pulumi.Bool(false),
			ReadOnlyRootFilesystem:   pulumi.Bool(true),
			RunAsNonRoot:             pulumi.Bool(true),
			Capabilities:             &corev1.CapabilitiesArgs{Drop: pulumi.StringArray{pulumi.String("ALL")}},
		},
		// The only writable place: the engine's private directory (PDFium's
		// compiled code, ~21 MB; PDF pages being written).
		VolumeMounts: corev1.VolumeMountArray{&corev1.VolumeMountArgs{
			Name: pulumi.String("tmp"), MountPath: pulumi.String("/tmp"),
		}},
	}
	if ro.component == "api" {
		// The image has no shell: Kubernetes' own sleep action holds SIGTERM back until the
		// pod is out of the Service's endpoints. Workers are behind no Service: on SIGTERM
		// they give their running jobs back to the queue at the shutdown timeout, and have the
		// same grace period for that.
		c.Lifecycle = &corev1.LifecycleArgs{
			PreStop: &corev1.LifecycleHandlerArgs{Sleep: &corev1.SleepActionArgs{Seconds: pulumi.Int(preStopSeconds)}},
		}
	}
	return &corev1.PodTemplateSpecArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Labels: labels,
			Annotations: pulumi.StringMap{
				// A ConfigMap change rolls the pods.
				"readocr.dev/config-hash": pulumi.String(configHash),
				// Prometheus scrapes the admin port, which the Service does not expose.
				"prometheus.io/scrape": pulumi.String("true"),
				"prometheus.io/port":   pulumi.String(fmt.Sprint(adminPort)),
				"prometheus.io/path":   pulumi.String("/metrics"),
			},
		},
		Spec: &corev1.PodSpecArgs{
			ServiceAccountName:            pulumi.String(name),
			AutomountServiceAccountToken:  pulumi.Bool(false),
			TerminationGracePeriodSeconds: pulumi.Int(graceSeconds),
			SecurityContext: &corev1.PodSecurityContextArgs{
				RunAsNonRoot:   pulumi.Bool(true),
				RunAsUser:      pulumi.Int(uid),
				RunAsGroup:     pulumi.Int(uid),
				SeccompProfile: &corev1.SeccompProfileArgs{Type: pulumi.String("RuntimeDefault")},
			},
			TopologySpreadConstraints: corev1.TopologySpreadConstraintArray{&corev1.TopologySpreadConstraintArgs{
				MaxSkew:           pulumi.Int(1),
				TopologyKey:       pulumi.String("kubernetes.io/hostname"),
				WhenUnsatisfiable: pulumi.String("ScheduleAnyway"),
				LabelSelector:     &metav1.LabelSelectorArgs{MatchLabels: selector},
			}},
			Containers: corev1.ContainerArray{c},
			// On the node's disk, not in memory: a tmpfs would count against the memory
			// limit the service shares out.
			Volumes: corev1.VolumeArray{&corev1.VolumeArgs{
				Name:     pulumi.String("tmp"),
				EmptyDir: &corev1.EmptyDirVolumeSourceArgs{SizeLimit: pulumi.String("256Mi")},
			}},
		},
	}
}

// webhookSecret is the optional Secret with OCR_WEBHOOK_SECRET.
const webhookSecret = name + "-webhook"

// cpuEnv sets an environment variable to the container's CPU limit, rounded up to whole CPUs.
func cpuEnv(key string) *corev1.EnvVarArgs {
	return &corev1.EnvVarArgs{
		Name: pulumi.String(key),
		ValueFrom: &corev1.EnvVarSourceArgs{ResourceFieldRef: &corev1.ResourceFieldSelectorArgs{
			Resource: pulumi.String("limits.cpu"), Divisor: pulumi.String("1"),
		}},
	}
}

func hash(m map[string]string) string {
	b, _ := json.Marshal(m) // map keys are sorted
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
