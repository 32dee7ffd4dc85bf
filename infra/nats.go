package main

import (
	"fmt"
	"strings"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	policyv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/policy/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// NATSImage is the official nats-server image of the version go.mod embeds (a test holds the
// two together): the jobs code is tested against this server. Offline machines build it from
// the Go module proxy under this name (hack/nats-image.sh).
// renovate: datasource=docker depName=nats
const NATSImage = "nats:2.15.2"

const (
	natsName       = name + "-nats"
	natsHeadless   = natsName + "-headless"
	natsClientPort = 4222
	natsRoutePort  = 6222
	natsMonitor    = 8222
	// kedaNamespace is where KEDA's operator, which reads the monitoring port, runs.
	kedaNamespace = "keda"
)

// NATS is the JetStream cluster that holds jobs.
type NATS struct {
	ConfigMap     *corev1.ConfigMap
	Service       *corev1.Service // clients and monitoring
	Headless      *corev1.Service // the servers' stable names, for routes
	StatefulSet   *appsv1.StatefulSet
	PDB           *policyv1.PodDisruptionBudget
	NetworkPolicy *networkingv1.NetworkPolicy
}

// natsURL is what readocr pods connect to.
func natsURL() string { return fmt.Sprintf("nats://%s:%d", natsName, natsClientPort) }

// natsConfig is nats-server's configuration: JetStream on the volume, and with more than one
// server a cluster whose routes are the StatefulSet's stable names.
func natsConfig(cfg Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "server_name: $POD_NAME\nport: %d\nhttp_port: %d\n", natsClientPort, natsMonitor)
	// Leave a tenth of the volume free: a full disk would stop JetStream.
	fmt.Fprintf(&b, "jetstream {\n  store_dir: /data\n  max_memory_store: 64MB\n  max_file_store: %s\n}\n", fileStore(cfg.NATSStorage))
	if cfg.NATSReplicas > 1 {
		var routes []string
		for i := range cfg.NATSReplicas {
			routes = append(routes, fmt.Sprintf("    nats://%s-%d.%s:%d", natsName, i, natsHeadless, natsRoutePort))
		}
		fmt.Fprintf(&b, "cluster {\n  name: %s\n  port: %d\n  routes: [\n%s\n  ]\n}\n", name, natsRoutePort, strings.Join(routes, "\n"))
	}
	return b.String()
}

// fileStore is 90 % of a volume size such as "1Gi" or "10Gi", in MB for nats-server.
func fileStore(size string) string {
	var n int
	var unit string
	fmt.Sscanf(size, "%d%s", &n, &unit)
	mib := map[string]int{"Mi": 1, "Gi": 1024, "Ti": 1024 * 1024}[unit] * n
	return fmt.Sprintf("%dMB", mib*9/10)
}

func natsResources(ctx *pulumi.Context, cfg Config, opts ...pulumi.ResourceOption) (*NATS, error) {
	selector := pulumi.StringMap{"app.kubernetes.io/name": pulumi.String("nats"), "app.kubernetes.io/instance": pulumi.String(natsName)}
	labels := pulumi.StringMap{
		"app.kubernetes.io/name":      pulumi.String("nats"),
		"app.kubernetes.io/instance":  pulumi.String(natsName),
		"app.kubernetes.io/version":   pulumi.String(strings.TrimPrefix(NATSImage, "nats:")),
		"app.kubernetes.io/component": pulumi.String("broker"),
		"app.kubernetes.io/part-of":   pulumi.String(name),
	}
	meta := func(n string) *metav1.ObjectMetaArgs {
		return &metav1.ObjectMetaArgs{Name: pulumi.String(n), Labels: labels}
	}
	n := &NATS{}
	var err error
	conf := natsConfig(cfg)
	if n.ConfigMap, err = corev1.NewConfigMap(ctx, natsName, &corev1.ConfigMapArgs{
		Metadata: meta(natsName),
		Data:     pulumi.StringMap{"nats.conf": pulumi.String(conf)},
	}, opts...); err != nil {
		return nil, err
	}

	port := func(n string, p int) *corev1.ServicePortArgs {
		return &corev1.ServicePortArgs{Name: pulumi.String(n), Port: pulumi.Int(p), TargetPort: pulumi.String(n), Protocol: pulumi.String("TCP")}
	}
	if n.Service, err = corev1.NewService(ctx, natsName, &corev1.ServiceArgs{
		Metadata: meta(natsName),
		Spec: &corev1.ServiceSpecArgs{
			Type:     pulumi.String("ClusterIP"),
			Selector: selector,
			Ports:    corev1.ServicePortArray{port("client", natsClientPort), port("monitor", natsMonitor)},
		},
	}, opts...); err != nil {
		return nil, err
	}
	// Servers find each other before they are ready: a cluster forms only once they do.
	if n.Headless, err = corev1.NewService(ctx, natsHeadless, &corev1.ServiceArgs{
		Metadata: meta(natsHeadless),
		Spec: &corev1.ServiceSpecArgs{
			ClusterIP:                pulumi.String("None"),
			PublishNotReadyAddresses: pulumi.Bool(true),
			Selector:                 selector,
			Ports:                    corev1.ServicePortArray{port("client", natsClientPort), port("cluster", natsRoutePort), port("monitor", natsMonitor)},
		},
	}, opts...); err != nil {
		return nil, err
	}

	probe := func(path string, period, failures int) *corev1.ProbeArgs {
		return &corev1.ProbeArgs{
			HttpGet:       &corev1.HTTPGetActionArgs{Path: pulumi.String(path), Port: pulumi.String("monitor")},
			PeriodSeconds: pulumi.Int(period), TimeoutSeconds: pulumi.Int(3), FailureThreshold: pulumi.Int(failures),
		}
	}
	cport := func(n string, p int) *corev1.ContainerPortArgs {
		return &corev1.ContainerPortArgs{Name: pulumi.String(n), ContainerPort: pulumi.Int(p), Protocol: pulumi.String("TCP")}
	}
	if n.StatefulSet, err = appsv1.NewStatefulSet(ctx, natsName, &appsv1.StatefulSetArgs{
		Metadata: meta(natsName),
		Spec: &appsv1.StatefulSetSpecArgs{
			Replicas:    pulumi.Int(cfg.NATSReplicas),
			ServiceName: pulumi.String(natsHeadless),
			// All servers start at once: each waits for the others' routes to form JetStream.
			PodManagementPolicy: pulumi.String("Parallel"),
			Selector:            &metav1.LabelSelectorArgs{MatchLabels: selector},
			Template: &corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{
					Labels:      labels,
					Annotations: pulumi.StringMap{"readocr.dev/config-hash": pulumi.String(hash(map[string]string{"nats.conf": conf}))},
				},
				Spec: &corev1.PodSpecArgs{
					AutomountServiceAccountToken: pulumi.Bool(false),
					// On SIGTERM the server flushes its stores and stops; clients reconnect
					// (to another server of a cluster) and resend what was not acknowledged.
					TerminationGracePeriodSeconds: pulumi.Int(30),
					SecurityContext: &corev1.PodSecurityContextArgs{
						RunAsNonRoot:   pulumi.Bool(true),
						RunAsUser:      pulumi.Int(uid),
						RunAsGroup:     pulumi.Int(uid),
						FsGroup:        pulumi.Int(uid),
						SeccompProfile: &corev1.SeccompProfileArgs{Type: pulumi.String("RuntimeDefault")},
					},
					TopologySpreadConstraints: corev1.TopologySpreadConstraintArray{&corev1.TopologySpreadConstraintArgs{
						MaxSkew: pulumi.Int(1), TopologyKey: pulumi.String("kubernetes.io/hostname"),
						WhenUnsatisfiable: pulumi.String("ScheduleAnyway"),
						LabelSelector:     &metav1.LabelSelectorArgs{MatchLabels: selector},
					}},
					Containers: corev1.ContainerArray{&corev1.ContainerArgs{
						Name:            pulumi.String("nats"),
						Image:           pulumi.String(NATSImage),
						ImagePullPolicy: pulumi.String("IfNotPresent"),
						Args:            pulumi.StringArray{pulumi.String("--config"), pulumi.String("/etc/nats/nats.conf")},
						Env: corev1.EnvVarArray{
							&corev1.EnvVarArgs{Name: pulumi.String("POD_NAME"), ValueFrom: &corev1.EnvVarSourceArgs{
								FieldRef: &corev1.ObjectFieldSelectorArgs{FieldPath: pulumi.String("metadata.name")}}},
							// The Go heap stays under the limit; JetStream's data is on disk.
							&corev1.EnvVarArgs{Name: pulumi.String("GOMEMLIMIT"), Value: pulumi.String("200MiB")},
						},
						Ports: corev1.ContainerPortArray{cport("client", natsClientPort), cport("cluster", natsRoutePort), cport("monitor", natsMonitor)},
						Resources: &corev1.ResourceRequirementsArgs{
							Requests: pulumi.StringMap{"cpu": pulumi.String("50m"), "memory": pulumi.String("64Mi")},
							Limits:   pulumi.StringMap{"cpu": pulumi.String("1"), "memory": pulumi.String("256Mi")},
						},
						// JetStream recovers its streams before it is healthy; a large store takes a while.
						StartupProbe:   probe("/healthz", 2, 90),
						ReadinessProbe: probe("/healthz?js-enabled-only=true", 5, 3),
						LivenessProbe:  probe("/healthz?js-enabled-only=true", 30, 3),
						SecurityContext: &corev1.SecurityContextArgs{
							AllowPrivilegeEscalation: pulumi.Bool(false),
							ReadOnlyRootFilesystem:   pulumi.Bool(true),
							RunAsNonRoot:             pulumi.Bool(true),
							Capabilities:             &corev1.CapabilitiesArgs{Drop: pulumi.StringArray{pulumi.String("ALL")}},
						},
						VolumeMounts: corev1.VolumeMountArray{
							&corev1.VolumeMountArgs{Name: pulumi.String("data"), MountPath: pulumi.String("/data")},
							&corev1.VolumeMountArgs{Name: pulumi.String("config"), MountPath: pulumi.String("/etc/nats")},
						},
					}},
					Volumes: corev1.VolumeArray{&corev1.VolumeArgs{
						Name:      pulumi.String("config"),
						ConfigMap: &corev1.ConfigMapVolumeSourceArgs{Name: pulumi.String(natsName)},
					}},
				},
			},
			// The jobs outlive the StatefulSet: deleting it (pulumi destroy) keeps the volumes.
			VolumeClaimTemplates: corev1.PersistentVolumeClaimTypeArray{&corev1.PersistentVolumeClaimTypeArgs{
				Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String("data"), Labels: labels},
				Spec: &corev1.PersistentVolumeClaimSpecArgs{
					AccessModes: pulumi.StringArray{pulumi.String("ReadWriteOnce")},
					Resources:   &corev1.VolumeResourceRequirementsArgs{Requests: pulumi.StringMap{"storage": pulumi.String(cfg.NATSStorage)}},
				},
			}},
		},
	}, opts...); err != nil {
		return nil, err
	}

	// A drain takes one server at a time: a cluster of three keeps its majority.
	if n.PDB, err = policyv1.NewPodDisruptionBudget(ctx, natsName, &policyv1.PodDisruptionBudgetArgs{
		Metadata: meta(natsName),
		Spec: &policyv1.PodDisruptionBudgetSpecArgs{
			MaxUnavailable: pulumi.Int(1),
			Selector:       &metav1.LabelSelectorArgs{MatchLabels: selector},
		},
	}, opts...); err != nil {
		return nil, err
	}

	// Only readocr's own pods (API, workers, the other NATS servers) reach NATS; KEDA's operator
	// reads the monitoring port. The jobs carry users' documents.
	tcp := func(p int) *networkingv1.NetworkPolicyPortArgs {
		return &networkingv1.NetworkPolicyPortArgs{Protocol: pulumi.String("TCP"), Port: pulumi.Int(p)}
	}
	if n.NetworkPolicy, err = networkingv1.NewNetworkPolicy(ctx, natsName, &networkingv1.NetworkPolicyArgs{
		Metadata: meta(natsName),
		Spec: &networkingv1.NetworkPolicySpecArgs{
			PodSelector: &metav1.LabelSelectorArgs{MatchLabels: selector},
			PolicyTypes: pulumi.StringArray{pulumi.String("Ingress")},
			Ingress: networkingv1.NetworkPolicyIngressRuleArray{
				&networkingv1.NetworkPolicyIngressRuleArgs{
					From: networkingv1.NetworkPolicyPeerArray{&networkingv1.NetworkPolicyPeerArgs{
						PodSelector: &metav1.LabelSelectorArgs{MatchLabels: pulumi.StringMap{"app.kubernetes.io/part-of": pulumi.String(name)}},
					}},
					Ports: networkingv1.NetworkPolicyPortArray{tcp(natsClientPort), tcp(natsRoutePort)},
				},
				&networkingv1.NetworkPolicyIngressRuleArgs{
					From: networkingv1.NetworkPolicyPeerArray{&networkingv1.NetworkPolicyPeerArgs{
						NamespaceSelector: &metav1.LabelSelectorArgs{MatchLabels: pulumi.StringMap{"kubernetes.io/metadata.name": pulumi.String(kedaNamespace)}},
					}},
					Ports: networkingv1.NetworkPolicyPortArray{tcp(natsMonitor)},
				},
			},
		},
	}, opts...); err != nil {
		return nil, err
	}
	return n, nil
}
