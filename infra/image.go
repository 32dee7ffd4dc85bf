package main

import (
	"github.com/pulumi/pulumi-docker/sdk/v4/go/docker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// buildImage builds the repository's Dockerfile as name with pulumi-docker. SkipPush keeps it
// in the local engine: on minikube, run `eval $(minikube docker-env)` first so the engine is
// minikube's and the pods find the image without a registry. The output (the tag the engine
// holds) feeds the Deployment, so a new build rolls the pods.
func buildImage(ctx *pulumi.Context, name string) (pulumi.StringOutput, error) {
	img, err := docker.NewImage(ctx, "readocr", &docker.ImageArgs{
		ImageName: pulumi.String(name),
		Build: &docker.DockerBuildArgs{
			Context:    pulumi.String(".."),
			Dockerfile: pulumi.String("../Dockerfile"),
			Args:       pulumi.StringMap{"VERSION": pulumi.String(version())},
		},
		SkipPush: pulumi.Bool(true),
	})
	if err != nil {
		return pulumi.StringOutput{}, err
	}
	return img.ImageName, nil
}
