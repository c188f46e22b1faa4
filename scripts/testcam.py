#!/usr/bin/python3
"""testcam: a simulated IP camera, a real RTSP server built on GStreamer.

It serves one or more H.264 test patterns over RTSP on 127.0.0.1, with
optional basic or digest authentication, and prints one line
"READY port=<port>" on stdout once the port is open.

Signals make it misbehave on purpose, for tests and the drill:
  SIGUSR1  stall: every stream stops sending frames while TCP and RTCP stay up
  SIGUSR2  resume the streams after a stall
  SIGTERM  exit (a "camera reboot" is SIGTERM then a new start on the same port)

Run it with Debian's /usr/bin/python3, which has the gi bindings:
  /usr/bin/python3 scripts/testcam.py --port 0 --mount /cam1=1280x720@25 \
      --user admin --password 'p@ss' --auth digest
"""

import argparse
import base64
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

ROLE = "camera-user"


def parse_mount(spec):
    """'/cam1=1280x720@25' -> ('/cam1', 1280, 720, 25)."""
    path, _, fmt = spec.partition("=")
    if not path.startswith("/") or not fmt:
        raise argparse.ArgumentTypeError("mount must look like /path=WIDTHxHEIGHT@FPS: %r" % spec)
    size, _, fps = fmt.partition("@")
    width, _, height = size.partition("x")
    try:
        return path, int(width), int(height), int(fps or "25")
    except ValueError:
        raise argparse.ArgumentTypeError("mount must look like /path=WIDTHxHEIGHT@FPS: %r" % spec)


def pipeline(width, height, fps, pattern):
    # The valve named "v" is the stall switch: drop=true stops frames but
    # keeps the RTSP session, TCP connection and RTCP alive, like a hung camera.
    return (
        "( videotestsrc is-live=true pattern=%s ! "
        "video/x-raw,width=%d,height=%d,framerate=%d/1 ! "
        "clockoverlay time-format=\"%%H:%%M:%%S\" ! "
        "valve name=v drop=false ! "
        "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=%d ! "
        "rtph264pay name=pay0 pt=96 config-interval=1 )"
    ) % (pattern, width, height, fps, fps * 2)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--mount", type=parse_mount, action="append", required=True)
    ap.add_argument("--user", default="")
    ap.add_argument("--password", default="")
    ap.add_argument("--auth", choices=["none", "basic", "digest"], default="none")
    ap.add_argument("--pattern", default="ball")
    args = ap.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.address)
    server.set_service(str(args.port))

    permissions = None
    if args.auth != "none":
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, ROLE)
        if args.auth == "digest":
            auth.add_digest(args.user, args.password, token)
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        else:
            cred = base64.b64encode(("%s:%s" % (args.user, args.password)).encode()).decode()
            auth.add_basic(cred, token)
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_role_from_structure(Gst.Structure.new_from_string(
            "%s, media.factory.access=(boolean)true, media.factory.construct=(boolean)true" % ROLE))

    medias = []

    def on_configure(_factory, media):
        medias.append(media)
        media.connect("unprepared", lambda m: medias.remove(m) if m in medias else None)

    mounts = server.get_mount_points()
    for path, width, height, fps in args.mount:
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(pipeline(width, height, fps, args.pattern))
        # Not shared: a shared media crashed once when two clients connected
        # at the same moment, and a new client's PLAY made others' timestamps
        # jump back.
        factory.set_shared(False)
        factory.connect("media-configure", on_configure)
        if permissions is not None:
            factory.set_permissions(permissions)
        mounts.add_factory(path, factory)

    if server.attach(None) == 0:
        print("testcam: cannot listen on %s:%d" % (args.address, args.port), file=sys.stderr)
        return 1

    loop = GLib.MainLoop()

    def set_drop(drop):
        for media in list(medias):
            element = media.get_element()
            valve = element.get_by_name("v") if element is not None else None
            if valve is not None:
                valve.set_property("drop", drop)
        print("testcam: %s (%d streams)" % ("stalled" if drop else "resumed", len(medias)), file=sys.stderr, flush=True)
        return True

    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGUSR1, set_drop, True)
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGUSR2, set_drop, False)
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, lambda: loop.quit() or False)
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGINT, lambda: loop.quit() or False)

    print("READY port=%d" % server.get_bound_port(), flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
