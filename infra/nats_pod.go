package main

import (
	"fmt"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// NATS's ephemeral storage: its logs (the kubelet keeps five files of 10 Mi per container)
// and the pid file; JetStream's data is on the claim.
const (
	natsEphemeralRequest = "32Mi"
	natsEphemeralLimit   = "128Mi"
)

// natsServers runs the servers: one pod per server, each with its claim.
//
// The volume claim template cannot change once the StatefulSet exists (the API server refuses
// it, and Pulumi would replace the StatefulSet, taking NATS down): it carries only labels that
// never change (no version) and the size asked when the claims are first made. Pulumi ignores
// later changes to it (natsStorage resizes nothing: README, Day 2).
func natsServers(ctx *pulumi.Context, cfg Config, conf string, knobs natsKnobs, opts ...pulumi.ResourceOption) (*appsv1.StatefulSet, error) {
	selector := pulumi.ToStringMap(natsSelector)
	return appsv1.NewStatefulSet(ctx, natsName, &appsv1.StatefulSetArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(natsName), Labels: natsLabels(true)},
		Spec: &appsv1.StatefulSetSpecArgs{
			Replicas:    pulumi.Int(cfg.NATSReplicas),
			ServiceName: pulumi.String(natsHeadless),
			// All servers start at once: each waits for the others' routes to form JetStream.
			// Updates still go one server at a time, each once it is ready (caught up).
			PodManagementPolicy: pulumi.String("Parallel"),
			Selector:            &metav1.LabelSelectorArgs{MatchLabels: selector},
			Template: &corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{
					Labels:      natsLabels(true),
					Annotations: pulumi.StringMap{"readocr.dev/config-hash": pulumi.String(hash(map[string]string{"nats.conf": conf}))},
				},
				Spec: natsPodSpec(cfg, knobs),
			},
			// The jobs outlive the StatefulSet: deleting it (pulumi destroy) keeps the volumes.
			VolumeClaimTemplates: corev1.PersistentVolumeClaimTypeArray{&corev1.PersistentVolumeClaimTypeArgs{
				Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String("data"), Labels: natsLabels(false)},
				Spec: &corev1.PersistentVolumeClaimSpecArgs{
					AccessModes: pulumi.StringArray{pulumi.String("ReadWriteOnce")},
					Resources:   &corev1.VolumeResourceRequirementsArgs{Requests: pulumi.StringMap{"storage": pulumi.String(cfg.NATSStorage)}},
				},
			}},
		},
	}, append(opts, pulumi.IgnoreChanges([]string{"spec.volumeClaimTemplates"}))...)
}

func natsPodSpec(cfg Config, knobs natsKnobs) *corev1.PodSpecArgs {
	probe := func(path string, period, failures int) *corev1.ProbeArgs {
		return &corev1.ProbeArgs{
			HttpGet:       &corev1.HTTPGetActionArgs{Path: pulumi.String(path), Port: pulumi.String("monitor")},
			PeriodSeconds: pulumi.Int(period), TimeoutSeconds: pulumi.Int(5), FailureThreshold: pulumi.Int(failures),
		}
	}
	cport := func(n string, p int) *corev1.ContainerPortArgs {
		return &corev1.ContainerPortArgs{Name: pulumi.String(n), ContainerPort: pulumi.Int(p), Protocol: pulumi.String("TCP")}
	}
	memLimit, _ := bytesOf(cfg.NATSMemLimit) // validated
	spec := &corev1.PodSpecArgs{
		AutomountServiceAccountToken:  pulumi.Bool(false),
		TerminationGracePeriodSeconds: pulumi.Int(natsGraceSeconds),
		SecurityContext: &corev1.PodSecurityContextArgs{
			RunAsNonRoot:   pulumi.Bool(true),
			RunAsUser:      pulumi.Int(uid),
			RunAsGroup:     pulumi.Int(uid),
			FsGroup:        pulumi.Int(uid),
			SeccompProfile: &corev1.SeccompProfileArgs{Type: pulumi.String("RuntimeDefault")},
		},
		Containers: corev1.ContainerArray{&corev1.ContainerArgs{
			Name:            pulumi.String("nats"),
			Image:           pulumi.String(knobs.image),
			ImagePullPolicy: pulumi.String("IfNotPresent"),
			Args:            pulumi.StringArray{pulumi.String("--config"), pulumi.String("/etc/nats/nats.conf")},
			EnvFrom:         natsServerAuthEnv(cfg),
			Env: corev1.EnvVarArray{
				&corev1.EnvVarArgs{Name: pulumi.String("POD_NAME"), ValueFrom: &corev1.EnvVarSourceArgs{
					FieldRef: &corev1.ObjectFieldSelectorArgs{FieldPath: pulumi.String("metadata.name")}}},
				// The Go heap stays under the limit with a margin; JetStream's data is on disk.
				&corev1.EnvVarArgs{Name: pulumi.String("GOMEMLIMIT"), Value: pulumi.String(fmt.Sprintf("%dMiB", memLimit*8/10>>20))},
			},
			Ports: corev1.ContainerPortArray{cport("client", natsClientPort), cport("cluster", natsRoutePort), cport("monitor", natsMonitor)},
			Resources: &corev1.ResourceRequirementsArgs{
				Requests: pulumi.StringMap{"cpu": pulumi.String(cfg.NATSCPURequest), "memory": pulumi.String(cfg.NATSMemRequest),
					"ephemeral-storage": pulumi.String(natsEphemeralRequest)},
				Limits: pulumi.StringMap{"cpu": pulumi.String(cfg.NATSCPULimit), "memory": pulumi.String(cfg.NATSMemLimit),
					"ephemeral-storage": pulumi.String(natsEphemeralLimit)},
			},
			// Started: JetStream recovered its streams and, in a cluster, caught up with the
			// others (a large store takes a while); an update moves to the next server only then.
			StartupProbe: probe("/healthz", 5, 120),
			// Ready for clients: JetStream is on.
			ReadinessProbe: probe("/healthz?js-enabled-only=true", 10, 3),
			// Alive: the server answers. Not JetStream's health, which depends on the other
			// servers: two of three lost must not make the kubelet restart the third.
			LivenessProbe: probe("/healthz?js-server-only=true", 30, 3),
			// The image has nothing but /nats-server: it signals itself through the pid file.
			Lifecycle: &corev1.LifecycleArgs{PreStop: &corev1.LifecycleHandlerArgs{Exec: &corev1.ExecActionArgs{
				Command: pulumi.StringArray{pulumi.String("/nats-server"), pulumi.String("--signal"), pulumi.String("ldm=" + natsPidDir + "/nats.pid")},
			}}},
			SecurityContext: &corev1.SecurityContextArgs{
				AllowPrivilegeEscalation: pulumi.Bool(false),
				ReadOnlyRootFilesystem:   pulumi.Bool(true),
				RunAsNonRoot:             pulumi.Bool(true),
				Capabilities:             &corev1.CapabilitiesArgs{Drop: pulumi.StringArray{pulumi.String("ALL")}},
			},
			VolumeMounts: corev1.VolumeMountArray{
				&corev1.VolumeMountArgs{Name: pulumi.String("data"), MountPath: pulumi.String("/data")},
				&corev1.VolumeMountArgs{Name: pulumi.String("config"), MountPath: pulumi.String("/etc/nats")},
				&corev1.VolumeMountArgs{Name: pulumi.String("pid"), MountPath: pulumi.String(natsPidDir)},
			},
		}},
		Volumes: corev1.VolumeArray{
			&corev1.VolumeArgs{Name: pulumi.String("config"), ConfigMap: &corev1.ConfigMapVolumeSourceArgs{Name: pulumi.String(natsName)}},
			&corev1.VolumeArgs{Name: pulumi.String("pid"), EmptyDir: &corev1.EmptyDirVolumeSourceArgs{SizeLimit: pulumi.String("1Mi")}},
		},
	}
	if v, m := natsTLSServerVolume(cfg); v != nil {
		spec.Volumes = append(spec.Volumes.(corev1.VolumeArray), v)
		c := spec.Containers.(corev1.ContainerArray)[0].(*corev1.ContainerArgs)
		c.VolumeMounts = append(c.VolumeMounts.(corev1.VolumeMountArray), m)
	}
	if cfg.NATSReplicas > 1 {
		spec.Affinity, spec.TopologySpreadConstraints = natsSpread(knobs.spread)
	}
	return spec
}

// natsSpread keeps a cluster's servers on different nodes: with two on one node, losing that
// node loses the majority. A server that finds no node of its own waits (Pending) rather than
// share one. Where nodes have zones, the servers also spread over them, as a preference (a
// cluster in one zone still schedules). One server needs neither (minikube's single node).
// spread natsSpreadPreferred (readocr:natsSpread, for a test cluster of one node only) makes
// the nodes a preference too.
func natsSpread(spread string) (*corev1.AffinityArgs, corev1.TopologySpreadConstraintArray) {
	sel := &metav1.LabelSelectorArgs{MatchLabels: pulumi.ToStringMap(natsSelector)}
	term := &corev1.PodAffinityTermArgs{TopologyKey: pulumi.String("kubernetes.io/hostname"), LabelSelector: sel}
	apart := &corev1.AffinityArgs{PodAntiAffinity: &corev1.PodAntiAffinityArgs{
		RequiredDuringSchedulingIgnoredDuringExecution: corev1.PodAffinityTermArray{term},
	}}
	if spread == natsSpreadPreferred {
		apart = &corev1.AffinityArgs{PodAntiAffinity: &corev1.PodAntiAffinityArgs{
			PreferredDuringSchedulingIgnoredDuringExecution: corev1.WeightedPodAffinityTermArray{
				&corev1.WeightedPodAffinityTermArgs{Weight: pulumi.Int(100), PodAffinityTerm: term},
			},
		}}
	}
	zones := corev1.TopologySpreadConstraintArray{&corev1.TopologySpreadConstraintArgs{
		MaxSkew: pulumi.Int(1), TopologyKey: pulumi.String("topology.kubernetes.io/zone"),
		WhenUnsatisfiable: pulumi.String("ScheduleAnyway"), LabelSelector: sel,
	}}
	return apart, zones
}
