package config

// Live view's limits (api.liveMaxViewers, api.liveMaxViewersPerCamera):
// every viewer holds one of the API's connections, so the total stays well
// under their limit, leaving room for the page's own calls.
const (
	DefaultLiveMaxViewers          = 32
	DefaultLiveMaxViewersPerCamera = 16
	MaxLiveViewers                 = 100
)

func (a API) validateLive(v *validator) {
	if a.LiveMaxViewers < 1 || a.LiveMaxViewers > MaxLiveViewers {
		v.add("api.liveMaxViewers", "must be 1 to %d (got %d)", MaxLiveViewers, a.LiveMaxViewers)
		return
	}
	if a.LiveMaxViewersPerCamera < 1 || a.LiveMaxViewersPerCamera > a.LiveMaxViewers {
		v.add("api.liveMaxViewersPerCamera", "must be 1 to api.liveMaxViewers, %d (got %d)", a.LiveMaxViewers, a.LiveMaxViewersPerCamera)
	}
}
