package main

import (
	"github.com/cctvd/cctvd/config"
	"github.com/cctvd/cctvd/retention"
	"github.com/cctvd/cctvd/snapshot"
	"github.com/cctvd/cctvd/uploader"
)

// snapshotConfig: the cameras' stills are made by the configured ffmpeg.
func snapshotConfig(cfg *config.Config) snapshot.Config {
	return snapshot.Config{FFmpegPath: cfg.FFmpeg.Path}
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
	}
}

func retentionConfig(cfg *config.Config) retention.Config {
	return retention.Config{
		SavePath:     cfg.StorageConfig.SavePath,
		LimitBytes:   cfg.StorageConfig.LimitBytes(),
		LowWater:     cfg.StorageConfig.LowWaterPercent / 100,
		MinFreeBytes: int64(cfg.StorageConfig.MinFreeGB * 1e9),
	}
}

func feedIDs(cfg *config.Config) map[string]string {
	ids := map[string]string{}
	for _, c := range cfg.Cameras {
		ids[c.CameraName] = c.VideoFeedID
	}
	return ids
}
