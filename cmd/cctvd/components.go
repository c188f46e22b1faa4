package main

import (
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/cctvd/cctvd/alerts"
	"github.com/cctvd/cctvd/alerts/mqtt"
	"github.com/cctvd/cctvd/alerts/webhook"
	"github.com/cctvd/cctvd/api"
	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/export"
	"github.com/cctvd/cctvd/keeper"
	"github.com/cctvd/cctvd/layout"
	"github.com/cctvd/cctvd/live"
	"github.com/cctvd/cctvd/rebuild"
	"github.com/cctvd/cctvd/retention"
	"github.com/cctvd/cctvd/segmenter"
	"github.com/cctvd/cctvd/snapshot"
	"github.com/cctvd/cctvd/supervisor"
	"github.com/cctvd/cctvd/uploader"
	"github.com/cctvd/cctvd/volume"
)

// The one place where the config reaches the components. Each component
// takes a Config of its own, with no knowledge of config.json; these
// functions build them from the loaded config, at start and at each reload.
// The product's defaults are applied once, by package config, before any
// of them runs; a component only guards against zero values.

// supervisorConfig: what every camera's ffmpeg shares.
func supervisorConfig(cfg *config.Config, owner string) supervisor.Config {
	return supervisor.Config{
		SavePath:     cfg.StorageConfig.SavePath,
		Owner:        owner,
		FFmpegPath:   cfg.FFmpeg.Path,
		ProbePath:    cfg.FFmpeg.ProbePath,
		Preset:       cfg.FFmpeg.Preset,
		StallTimeout: cfg.FFmpeg.StallTimeout.Std(),
		StopTimeout:  cfg.FFmpeg.StopTimeout.Std(),
	}
}

// segmenterConfig: syncInterval 0 in the config turns the flushing off,
// which the segmenter spells as a negative interval.
func segmenterConfig(cfg *config.Config, owner string) segmenter.Config {
	syncEvery := cfg.StorageConfig.SyncInterval.Std()
	if syncEvery == 0 {
		syncEvery = -1 // off
	}
	return segmenter.Config{
		SavePath:     cfg.StorageConfig.SavePath,
		Owner:        owner,
		ProbePath:    cfg.FFmpeg.ProbePath,
		FeedIDs:      feedIDs(cfg),
		SyncInterval: syncEvery,
	}
}

// feedIDs are the feed ids of the cameras' staging folders, for the
// segmenter: each camera's main feed, and its sub feed's.
func feedIDs(cfg *config.Config) map[string]string {
	ids := map[string]string{}
	for _, c := range cfg.Cameras {
		for _, f := range c.Feeds() {
			ids[layout.FeedStagingName(f.CameraName, f.Feed)] = f.VideoFeedID
		}
	}
	return ids
}

// keeperConfig: the catalog in the state folder; the bucket and s3Path it
// is opened with are where the rows an earlier cctvd uploaded are taken to
// be.
func keeperConfig(cfg *config.Config) keeper.Config {
	st := cfg.StorageConfig
	return keeper.Config{Path: layout.Catalog(st.StateDir), SavePath: st.SavePath, RetentionDays: st.CatalogDays(),
		Bucket: cfg.S3Config.S3Bucket, Prefix: cfg.S3Config.S3Path}
}

// volumeConfig: the anchor that remembers savePath's disk lives outside
// savePath when it can (the state folder, or systemd's StateDirectory).
func volumeConfig(cfg *config.Config, getenv func(string) string) volume.Config {
	st := cfg.StorageConfig
	return volume.Config{SavePath: st.SavePath, AnchorDir: volume.AnchorDir(st.SavePath, st.StateDir, getenv)}
}

// clientConfig: how to reach S3.
func clientConfig(cfg *config.Config) uploader.ClientConfig {
	cc := uploader.ClientConfig{Region: cfg.Region(), Endpoint: cfg.S3Config.Endpoint,
		PathStyle: cfg.S3Config.ForcePathStyle != nil && *cfg.S3Config.ForcePathStyle}
	if a := cfg.AWSCredentials; a != nil {
		cc.AccessKeyID, cc.SecretAccessKey = a.AccessKeyID, a.SecretAccessKey
	}
	return cc
}

// uploaderClientConfig: the uploader's client, whose connections write
// through the upload cap.
func uploaderClientConfig(cfg *config.Config, lim *uploader.Limiter) uploader.ClientConfig {
	cc := clientConfig(cfg)
	cc.Limiter = lim
	return cc
}

func uploaderConfig(cfg *config.Config) uploader.Config {
	return uploader.Config{
		Bucket:           cfg.S3Config.S3Bucket,
		Prefix:           cfg.S3Config.S3Path,
		Concurrency:      cfg.S3Config.UploadConcurrency,
		PartSize:         int64(cfg.S3Config.PartSizeMB) << 20,
		PartConcurrency:  cfg.S3Config.PartConcurrency,
		ClearAfterUpload: cfg.StorageConfig.ClearAfterUpload,
		SavePath:         cfg.StorageConfig.SavePath,
		ProbePath:        cfg.FFmpeg.ProbePath,
		Order:            cfg.S3Config.UploadOrder,
		Feeds:            cfg.S3Config.UploadFeeds,
	}
}

func retentionConfig(cfg *config.Config) retention.Config {
	return retention.Config{
		SavePath:     cfg.StorageConfig.SavePath,
		LimitBytes:   cfg.StorageConfig.LimitBytes(),
		LowWater:     cfg.StorageConfig.LowWaterPercent / 100,
		MinFreeBytes: int64(cfg.StorageConfig.MinFreeGB * 1e9),
		// The quarantine's bound, a share of the limit; 0: none.
		QuarantineShare:     cfg.StorageConfig.QuarantineShare(),
		QuarantineUnbounded: cfg.StorageConfig.QuarantineShare() == 0,
		KeepActiveDays:      cfg.StorageConfig.KeepActiveDays,
	}
}

// rebuildConfig: the catalog rebuilt from the bucket, as far back as the
// catalog keeps rows.
func rebuildConfig(cfg *config.Config) rebuild.Config {
	return rebuild.Config{Bucket: cfg.S3Config.S3Bucket, Prefix: cfg.S3Config.S3Path, KeepDays: cfg.StorageConfig.CatalogDays()}
}

// snapshotConfig: the cameras' stills are made by the configured ffmpeg.
func snapshotConfig(cfg *config.Config) snapshot.Config {
	return snapshot.Config{FFmpegPath: cfg.FFmpeg.Path}
}

// liveConfig: live view reads the staging folder under savePath, within
// the API's viewer limits.
func liveConfig(cfg *config.Config) live.Config {
	return live.Config{SavePath: cfg.StorageConfig.SavePath, MaxViewers: cfg.API.LiveMaxViewers, MaxViewersPerCamera: cfg.API.LiveMaxViewersPerCamera}
}

func exportConfig(cfg *config.Config) export.ServiceConfig {
	return export.ServiceConfig{Bucket: cfg.S3Config.S3Bucket, Prefix: cfg.S3Config.S3Path, Version: version, Temp: exportTemp(cfg)}
}

// exportTemp: exports download to exportTempDir, keeping retention's
// floor, and the recordings' room below their limit, when that is on
// savePath's filesystem (the caller says what the recordings hold: Used).
func exportTemp(cfg *config.Config) *export.TempSpace {
	st := cfg.StorageConfig
	return &export.TempSpace{Dir: st.ExportTempDir, SavePath: st.SavePath, MinFreeBytes: int64(st.MinFreeGB * 1e9), LimitBytes: st.LimitBytes()}
}

// apiConfig: a stop request waits for ffmpeg's own stop timeout, and more.
func apiConfig(cfg *config.Config) api.Config {
	return api.Config{Listen: cfg.API.Listen, Settings: apiSettings(cfg), StopTimeout: cfg.FFmpeg.StopTimeout.Std() + 10*time.Second,
		MaxExportRange: cfg.API.MaxExportRange.Std()}
}

// apiSettings are the API's settings a reload may change.
func apiSettings(cfg *config.Config) api.Settings {
	a := cfg.API
	return api.Settings{Token: a.Token, AllowedHosts: a.AllowedHosts, TLSCert: a.TLSCert, TLSKey: a.TLSKey, MetricsAuth: a.MetricsAuth}
}

// alertsConfig: when the alerts raise events, and the outbox in the state
// folder.
func alertsConfig(cfg *config.Config, host string) alerts.Config {
	a := cfg.Alerts
	return alerts.Config{CameraDownAfter: a.CameraDownAfter.Std(), BacklogAfter: a.BacklogAfter.Std(), Cooldown: a.Cooldown.Std(),
		OutboxPath: layout.Alerts(cfg.StorageConfig.StateDir), Host: host, Version: version}
}

// alertTargets: the webhooks, then the broker.
func alertTargets(cfg *config.Config, log zerolog.Logger) ([]alerts.Target, error) {
	var out []alerts.Target
	for _, w := range cfg.Alerts.Webhooks {
		var events []alerts.Type
		for _, e := range w.Events {
			events = append(events, alerts.Type(e))
		}
		t, err := webhook.New(webhook.Config{URL: w.URL, Events: events, Secret: w.Secret, Version: version})
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	if m := cfg.Alerts.MQTT; m != nil {
		host, _ := os.Hostname()
		p, err := mqtt.New(mqtt.Config{Broker: m.Broker, Username: m.Username, Password: m.Password, TopicPrefix: m.TopicPrefix,
			DiscoveryPrefix: m.DiscoveryPrefix, TLS: m.TLS, CAFile: m.CAFile, Host: host, Version: version}, log)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}
