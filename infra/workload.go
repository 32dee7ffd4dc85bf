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
	Deployment     *appsv1.Deployment
	Service        *corev1.Service
	PDB            *policyv1.PodDisruptionBudget
	HPA            *autoscalingv2.HorizontalPodAutoscaler
	Ingress        *networkingv1.Ingress // with IngressHost
}

// settings is the service configuration carried by the ConfigMap. The service reads its
// memory limit from the cgroup and shares it out itself (README, Limits). Jobs are off: each
// replica's embedded broker would know only its own jobs, and the cluster's NATS is not
// deployed yet (README, Jobs).
func settings(cfg Config) map[string]string {
	return map[string]string{
		"OCR_JOBS":             "false",
		"OCR_LOG_LEVEL":        cfg.LogLevel,
		"OCR_SHUTDOWN_TIMEOUT": "20s",
		"OCR_QUEUE_TIMEOUT":    "20s",
		"OCR_MAX_IMAGE_BYTES":  "20971520",
		"OCR_MAX_PIXELS":       "40000000",
		"OCR_ADMIN_PORT":       "9090",
	}
}

// Workload declares the ConfigMap, ServiceAccount, Deployment, Service, PodDisruptionBudget and
// HorizontalPodAutoscaler of readocr. The objects carry no namespace, so the rendered manifests
// apply into whatever namespace kubectl is given.
func Workload(ctx *pulumi.Context, cfg Config, image pulumi.StringOutput, opts ...pulumi.ResourceOption) (*Resources, error) {
	version := cfg.Version
	selector := pulumi.StringMap{"app.kubernetes.io/name": pulumi.String(name), "app.kubernetes.io/instance": pulumi.String(name)}
	labels := pulumi.StringMap{
		"app.kubernetes.io/name":      pulumi.String(name),
		"app.kubernetes.io/instance":  pulumi.String(name),
		"app.kubernetes.io/version":   pulumi.String(version),
		"app.kubernetes.io/component": pulumi.String("api"),
		"app.kubernetes.io/part-of":   pulumi.String(name),
	}
	meta := func(n string) *metav1.ObjectMetaArgs {
		return &metav1.ObjectMetaArgs{Name: pulumi.String(n), Labels: labels}
	}
	r := &Resources{}
	var err error

	data := settings(cfg)
	r.ConfigMap, err = corev1.NewConfigMap(ctx, name, &corev1.ConfigMapArgs{
		Metadata: meta(name),
		Data:     pulumi.ToStringMap(data),
	}, opts...)
	if err != nil {
		return nil, err
	}

	r.ServiceAccount, err = corev1.NewServiceAccount(ctx, name, &corev1.ServiceAccountArgs{
		Metadata:                     meta(name),
		AutomountServiceAccountToken: pulumi.Bool(false), // the service never talks to the API server
	}, opts...)
	if err != nil {
		return nil, err
	}

	probe := func(path string, period, failures int) *corev1.ProbeArgs {
		return &corev1.ProbeArgs{
			HttpGet:          &corev1.HTTPGetActionArgs{Path: pulumi.String(path), Port: pulumi.String("http")},
			PeriodSeconds:    pulumi.Int(period),
			TimeoutSeconds:   pulumi.Int(2),
			FailureThreshold: pulumi.Int(failures),
		}
	}
	r.Deployment, err = appsv1.NewDeployment(ctx, name, &appsv1.DeploymentArgs{
		Metadata: meta(name),
		Spec: &appsv1.DeploymentSpecArgs{
			// No replicas: the HorizontalPodAutoscaler owns the count. A re-apply or `pulumi up`
			// that set it would reset what the autoscaler chose.
			RevisionHistoryLimit: pulumi.Int(5),
			Selector:             &metav1.LabelSelectorArgs{MatchLabels: selector},
			// Never below capacity during a rollout: one extra pod first, then one old pod goes.
			Strategy: &appsv1.DeploymentStrategyArgs{
				Type: pulumi.String("RollingUpdate"),
				RollingUpdate: &appsv1.RollingUpdateDeploymentArgs{
					MaxSurge: pulumi.Int(1), MaxUnavailable: pulumi.Int(0),
				},
			},
			Template: &corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{
					Labels: labels,
					Annotations: pulumi.StringMap{
						// A ConfigMap change rolls the pods.
						"readocr.dev/config-hash": pulumi.String(hash(data)),
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
					Containers: corev1.ContainerArray{&corev1.ContainerArgs{
						Name:            pulumi.String(name),
						Image:           image,
						ImagePullPolicy: pulumi.String("IfNotPresent"),
						Ports: corev1.ContainerPortArray{
							&corev1.ContainerPortArgs{Name: pulumi.String("http"), ContainerPort: pulumi.Int(port), Protocol: pulumi.String("TCP")},
							&corev1.ContainerPortArgs{Name: pulumi.String("admin"), ContainerPort: pulumi.Int(adminPort), Protocol: pulumi.String("TCP")},
						},
						EnvFrom: corev1.EnvFromSourceArray{&corev1.EnvFromSourceArgs{
							ConfigMapRef: &corev1.ConfigMapEnvSourceArgs{Name: pulumi.String(name)},
						}},
						// One OCR worker per CPU of the limit; Go's scheduler sized the same way.
						Env: corev1.EnvVarArray{
							cpuEnv("OCR_WORKERS"),
							cpuEnv("GOMAXPROCS"),
						},
						Resources: &corev1.ResourceRequirementsArgs{
							Requests: pulumi.StringMap{"cpu": pulumi.String(cfg.CPURequest), "memory": pulumi.String(cfg.MemRequest)},
							Limits:   pulumi.StringMap{"cpu": pulumi.String(cfg.CPULimit), "memory": pulumi.String(cfg.MemLimit)},
						},
						// Models load in well under a second; allow a slow node 60 s.
						StartupProbe:   probe("/readyz", 1, 60),
						ReadinessProbe: probe("/readyz", 2, 2),
						LivenessProbe:  probe("/healthz", 10, 3),
						// The image has no shell: Kubernetes' own sleep action holds SIGTERM back
						// until the pod is out of the Service's endpoints.
						Lifecycle: &corev1.LifecycleArgs{
							PreStop: &corev1.LifecycleHandlerArgs{Sleep: &corev1.SleepActionArgs{Seconds: pulumi.Int(preStopSeconds)}},
						},
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
					}},
					// On the node's disk, not in memory: a tmpfs would count against the memory
					// limit the service shares out.
					Volumes: corev1.VolumeArray{&corev1.VolumeArgs{
						Name:     pulumi.String("tmp"),
						EmptyDir: &corev1.EmptyDirVolumeSourceArgs{SizeLimit: pulumi.String("256Mi")},
					}},
				},
			},
		},
	}, opts...)
	if err != nil {
		return nil, err
	}

	svcPort := &corev1.ServicePortArgs{
		Name: pulumi.String("http"), Port: pulumi.Int(port), TargetPort: pulumi.String("http"), Protocol: pulumi.String("TCP"),
	}
	if cfg.ServiceType == "NodePort" && cfg.NodePort != 0 {
		svcPort.NodePort = pulumi.Int(cfg.NodePort)
	}
	r.Service, err = corev1.NewService(ctx, name, &corev1.ServiceArgs{
		Metadata: meta(name),
		Spec: &corev1.ServiceSpecArgs{
			Type:     pulumi.String(cfg.ServiceType),
			Selector: selector,
			Ports:    corev1.ServicePortArray{svcPort},
		},
	}, opts...)
	if err != nil {
		return nil, err
	}

	// Voluntary disruptions (node drains) take at most one pod at a time.
	r.PDB, err = policyv1.NewPodDisruptionBudget(ctx, name, &policyv1.PodDisruptionBudgetArgs{
		Metadata: meta(name),
		Spec: &policyv1.PodDisruptionBudgetSpecArgs{
			MaxUnavailable: pulumi.Int(1),
			Selector:       &metav1.LabelSelectorArgs{MatchLabels: selector},
		},
	}, opts...)
	if err != nil {
		return nil, err
	}

	// OCR is CPU-bound: scale on CPU (needs metrics-server: minikube addons enable metrics-server).
	r.HPA, err = autoscalingv2.NewHorizontalPodAutoscaler(ctx, name, &autoscalingv2.HorizontalPodAutoscalerArgs{
		Metadata: meta(name),
		Spec: &autoscalingv2.HorizontalPodAutoscalerSpecArgs{
			ScaleTargetRef: &autoscalingv2.CrossVersionObjectReferenceArgs{
				ApiVersion: pulumi.String("apps/v1"), Kind: pulumi.String("Deployment"), Name: pulumi.String(name),
			},
			MinReplicas: pulumi.Int(cfg.MinReplicas),
			MaxReplicas: pulumi.Int(cfg.MaxReplicas),
			Metrics: autoscalingv2.MetricSpecArray{&autoscalingv2.MetricSpecArgs{
				Type: pulumi.String("Resource"),
				Resource: &autoscalingv2.ResourceMetricSourceArgs{
					Name:   pulumi.String("cpu"),
					Target: &autoscalingv2.MetricTargetArgs{Type: pulumi.String("Utilization"), AverageUtilization: pulumi.Int(70)},
				},
			}},
		},
	}, opts...)
	if err != nil {
		return nil, err
	}

	if cfg.IngressHost != "" {
		pathType := pulumi.String("Prefix")
		r.Ingress, err = networkingv1.NewIngress(ctx, name, &networkingv1.IngressArgs{
			Metadata: meta(name),
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
