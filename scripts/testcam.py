#!/usr/bin/python3
"""testcam: a simulated IP camera, a real RTSP server built on GStreamer.

It serves one or more H.264 test patterns over RTSP on 127.0.0.1, with
optional basic or digest authentication, and prints one line
"READY port=<port>" on stdout once the port is open.

Signals make it misbehave on purpose, for tests and the drill:
  SIGUSR1  stall: every stream stops sending frames while TCP and RTCP stay up
  SIGUSR2  resume the streams after a stall
  SIGHUP   change the scene: every test pattern turns solid red, and back at the next SIGHUP
  SIGTERM  exit (a "camera reboot" is SIGTERM then a new start on the same port)

--scene serves, instead of the test pattern, a still scene (colour bars,
the clock, light noise) whose motion and lights a test scripts, so that it
knows when there was activity: with --control PATH the camera reads
commands from a UNIX datagram socket at PATH, one per datagram, and says
each on stderr as it applies it:
  motion on | motion off   a white square moving across the picture, or none
  lights B                 the brightness, -1 to 1 (0 as it starts): a jump
--gop SECONDS sets the keyframe interval (default 2 s).

Every mount's pipeline is built once before the server listens: a
pipeline that cannot be built (an element that is not installed) makes the
camera exit 1 with the element's name, rather than answer 503 to every
client. --list-elements prints the elements the pipelines use, one a line,
without GStreamer (scripts/deps.sh checks them).

Run it with Debian's /usr/bin/python3, which has the gi bindings:
  /usr/bin/python3 scripts/testcam.py --port 0 --mount /cam1=1280x720@25 \
      --user admin --password 'p@ss' --auth digest

--pair serves a main and a sub stream from one source, as real cameras do:
one test pattern (and its clock) teed to two encoders at two sizes, each
its own mount and RTSP session:
  --pair /Streaming/Channels/101=1280x720@25,/Streaming/Channels/102=320x180
"""

import argparse
import base64
import re
import signal
import sys

ROLE = "camera-user"

# The test pattern's pipeline. The valve named "v" is the stall switch:
# drop=true stops frames but keeps the RTSP session, TCP connection and RTCP
# alive, like a hung camera.
PIPELINE = (
    "( videotestsrc name=src is-live=true pattern={pattern} ! "
    "video/x-raw,width={width},height={height},framerate={fps}/1 ! "
    "clockoverlay time-format=\"%H:%M:%S\" ! "
    "valve name=v drop=false ! "
    "x264enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} bitrate={bitrate} ! "
    "rtph264pay name=pay0 pt=96 config-interval=1 )"
)


# A pair's shared source: one pattern, teed to the two mounts' encoders
# through intervideo channels (each mount's pipeline encodes at its size).
PAIR_SOURCE = (
    "videotestsrc name=src is-live=true pattern={pattern} ! "
    "video/x-raw,width={width},height={height},framerate={fps}/1 ! "
    "clockoverlay time-format=\"%H:%M:%S\" ! tee name=t "
    "t. ! queue ! intervideosink channel={channel}-main "
    "t. ! queue ! videoscale ! video/x-raw,width={subwidth},height={subheight} ! intervideosink channel={channel}-sub"
)

# A pair's mount: its channel of the shared source, encoded at its size.
PAIR_MOUNT = (
    "( intervideosrc channel={channel} ! "
    "video/x-raw,width={width},height={height},framerate={fps}/1 ! "
    "valve name=v drop=false ! videoconvert ! "
    "x264enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} bitrate={bitrate} ! "
    "rtph264pay name=pay0 pt=96 config-interval=1 )"
)


def parse_pair(spec):
    """'/main=1280x720@25,/sub=320x180' -> ('/main', 1280, 720, 25, '/sub', 320, 180)."""
    main, _, sub = spec.partition(",")
    try:
        path, width, height, fps = parse_mount(main)
        subpath, _, size = sub.partition("=")
        subwidth, _, subheight = size.partition("x")
        if not subpath.startswith("/") or subpath == path:
            raise ValueError
        return path, width, height, fps, subpath, int(subwidth), int(subheight)
    except (ValueError, argparse.ArgumentTypeError):
        raise argparse.ArgumentTypeError("pair must look like /main=WIDTHxHEIGHT@FPS,/sub=WIDTHxHEIGHT: %r" % spec)


def pair_pipelines(index, pair, pattern, bitrate, sub_bitrate, gop_seconds):
    """The shared source's description and the two mounts' launches."""
    path, width, height, fps, subpath, subwidth, subheight = pair
    channel = "pair%d" % index
    gop = max(1, int(round(fps * gop_seconds)))
    source = PAIR_SOURCE.format(pattern=pattern, width=width, height=height, fps=fps, channel=channel,
                                subwidth=subwidth, subheight=subheight)
    main = PAIR_MOUNT.format(channel=channel + "-main", width=width, height=height, fps=fps, gop=gop, bitrate=bitrate)
    sub = PAIR_MOUNT.format(channel=channel + "-sub", width=subwidth, height=subheight, fps=fps, gop=gop, bitrate=sub_bitrate)
    return source, [(path, main), (subpath, sub)]


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


def parse_launch_arg(spec):
    """'/path=( videotestsrc ! ... )' -> ('/path', description)."""
    path, _, desc = spec.partition("=")
    if not path.startswith("/") or not desc:
        raise argparse.ArgumentTypeError("launch must look like /path=PIPELINE: %r" % spec)
    return path, desc


def pipeline(width, height, fps, pattern, bitrate=2048, gop_seconds=2.0):
    gop = max(1, int(round(fps * gop_seconds)))
    return PIPELINE.format(pattern=pattern, width=width, height=height, fps=fps, gop=gop, bitrate=bitrate)


# The scripted scene: still bars under light noise (snow at 6 %), a square
# ("sq", sink_1 of the compositor) shown and moved by "motion on", the
# lights ("lights", a videobalance) switched by "lights B".
SCENE = (
    "( compositor name=mix background=black sink_1::alpha=0 sink_1::zorder=1 sink_2::alpha=0.06 sink_2::zorder=2 ! "
    "video/x-raw,format=I420,width={width},height={height},framerate={fps}/1 ! "
    "videobalance name=lights ! "
    "clockoverlay time-format=\"%H:%M:%S\" ! "
    "valve name=v drop=false ! "
    "x264enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} ! "
    "rtph264pay name=pay0 pt=96 config-interval=1 "
    "videotestsrc is-live=true pattern=smpte ! video/x-raw,width={width},height={height},framerate={fps}/1 ! mix.sink_0 "
    "videotestsrc is-live=true pattern=white ! video/x-raw,width={side},height={side},framerate={fps}/1 ! mix.sink_1 "
    "videotestsrc is-live=true pattern=snow ! video/x-raw,width={width},height={height},framerate={fps}/1 ! mix.sink_2 )"
)


def scene(width, height, fps, gop=2.0):
    return SCENE.format(width=width, height=height, fps=fps, gop=max(1, round(fps * gop)), side=max(8, width // 8 // 2 * 2))


class Script:
    """The scene's state, applied to every client's pipeline: the square's
    motion (moved every 40 ms while on) and the lights."""

    def __init__(self, medias, width, height):
        self.medias, self.width, self.height = medias, width, height
        self.motion, self.brightness, self.t = False, 0.0, 0

    def elements(self, name):
        for media in list(self.medias):
            element = media.get_element()
            found = element.get_by_name(name) if element is not None else None
            if found is not None:
                yield found

    def square(self):
        side = max(8, self.width // 8 // 2 * 2)
        span_x, span_y = max(1, self.width - side), max(1, self.height - side)
        # Across and back, and up and down more slowly: never still.
        x = self.t * 7 % (2 * span_x)
        y = self.t * 3 % (2 * span_y)
        return (x if x < span_x else 2 * span_x - x), (y if y < span_y else 2 * span_y - y)

    def tick(self):
        if self.motion:
            self.t += 1
            x, y = self.square()
            for mix in self.elements("mix"):
                pad = mix.get_static_pad("sink_1")
                if pad is not None:
                    pad.set_property("xpos", int(x))
                    pad.set_property("ypos", int(y))
                    pad.set_property("alpha", 1.0)
        return True

    def apply(self, words):
        if words[:1] == ["motion"] and words[1:] in (["on"], ["off"]):
            self.motion = words[1] == "on"
            if not self.motion:
                for mix in self.elements("mix"):
                    pad = mix.get_static_pad("sink_1")
                    if pad is not None:
                        pad.set_property("alpha", 0.0)
        elif words[:1] == ["lights"] and len(words) == 2:
            try:
                self.brightness = max(-1.0, min(1.0, float(words[1])))
            except ValueError:
                return "bad brightness %r" % words[1]
        else:
            return "unknown command %r" % " ".join(words)
        self.tick()
        for b in self.elements("lights"):
            b.set_property("brightness", self.brightness)
        return None


def elements(description):
    """The element names of a gst-launch description, in order: the word
    after "(" or "!" that is not a caps string."""
    names = []
    for m in re.finditer(r"(?:^|[!(])\s*([A-Za-z0-9_-]+)(?=[\s)!]|$)", description):
        name = m.group(1)
        if name not in names:
            names.append(name)
    return names


def check_pipelines(Gst, GLib, launches):
    """Builds each mount's pipeline once; returns an error line or None."""
    for path, desc in launches:
        try:
            Gst.parse_launch_full(desc.strip().strip("()"), None, Gst.ParseFlags.FATAL_ERRORS)
        except GLib.Error as e:
            missing = [el for el in elements(desc) if Gst.ElementFactory.find(el) is None]
            if missing:
                return "testcam: mount %s: GStreamer element %s is not installed (%s)" % (
                    path, ", ".join(missing), e.message)
            return "testcam: mount %s: cannot build the pipeline: %s" % (path, e.message)
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--mount", type=parse_mount, action="append", default=[])
    ap.add_argument("--pair", type=parse_pair, action="append", default=[],
                    help="/main=WIDTHxHEIGHT@FPS,/sub=WIDTHxHEIGHT: a main and a sub stream of one source")
    ap.add_argument("--sub-bitrate", type=int, default=300, help="the pairs' sub streams' x264enc bitrate, kbit/s")
    ap.add_argument("--launch", type=parse_launch_arg, action="append", default=[],
                    help="/path=PIPELINE: a mount with its own gst-launch pipeline (payloader pay0)")
    ap.add_argument("--list-elements", action="store_true",
                    help="print the elements the test pattern's pipeline uses, and exit")
    ap.add_argument("--user", default="")
    ap.add_argument("--password", default="")
    ap.add_argument("--auth", choices=["none", "basic", "digest"], default="none")
    ap.add_argument("--pattern", default="ball")
    ap.add_argument("--bitrate", type=int, default=2048, help="x264enc's bitrate, kbit/s")
    ap.add_argument("--scene", action="store_true", help="the scripted scene instead of the test pattern")
    ap.add_argument("--control", default="", help="UNIX datagram socket for the scene's commands")
    ap.add_argument("--gop", type=float, default=2.0, help="seconds between keyframes")
    args = ap.parse_args()
    if args.list_elements:
        names = elements(pipeline(2, 2, 1, args.pattern))
        names += [e for e in elements(scene(16, 16, 1)) if e not in names]
        source, pair = pair_pipelines(0, ("/a", 2, 2, 1, "/b", 2, 2), args.pattern, 1, 1, 1)
        for d in [source] + [d for _, d in pair]:
            names += [n for n in elements(d) if n not in names]
        print("\n".join(names))
        return 0
    if not args.mount and not args.launch and not args.pair:
        ap.error("at least one --mount, --pair or --launch is needed")

    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtsp", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtsp, GstRtspServer

    Gst.init(None)
    build = (lambda w, h, fps: scene(w, h, fps, args.gop)) if args.scene else (lambda w, h, fps: pipeline(w, h, fps, args.pattern, args.bitrate, args.gop))
    launches = [(path, build(w, h, fps)) for path, w, h, fps in args.mount] + args.launch
    sources = []
    for i, pair in enumerate(args.pair):
        source, mounts = pair_pipelines(i, pair, args.pattern, args.bitrate, args.sub_bitrate, args.gop)
        sources.append((pair[0], source))
        launches += mounts
    problem = check_pipelines(Gst, GLib, launches + sources)
    if problem:
        print(problem, file=sys.stderr, flush=True)
        return 1
    # The pairs' sources run from the start, as a camera's sensor does.
    shared = []
    for path, desc in sources:
        p = Gst.parse_launch(desc)
        if p.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            print("testcam: pair %s: cannot start its source" % path, file=sys.stderr, flush=True)
            return 1
        shared.append(p)

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
    for path, desc in launches:
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(desc)
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

    red = {"on": False}

    def change_scene():
        red["on"] = not red["on"]
        for element in [m.get_element() for m in list(medias)] + shared:
            src = element.get_by_name("src") if element is not None else None
            if src is not None:
                src.set_property("pattern", "red" if red["on"] else args.pattern)
        print("testcam: scene %s (%d streams)" % ("changed" if red["on"] else "back", len(medias)), file=sys.stderr, flush=True)
        return True

    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGHUP, change_scene)

    if args.scene and args.mount:
        _, width, height, _ = args.mount[0]
        script = Script(medias, width, height)
        GLib.timeout_add(40, script.tick)
        if args.control:
            import os
            import socket
            if os.path.exists(args.control):
                os.unlink(args.control)
            control = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            control.bind(args.control)

            def on_command(_fd, _cond):
                words = control.recv(256).decode("utf-8", "replace").split()
                problem = script.apply(words)
                print("testcam: %s" % (problem or " ".join(words)), file=sys.stderr, flush=True)
                return True

            GLib.io_add_watch(control.fileno(), GLib.IO_IN, on_command)

    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGUSR1, set_drop, True)
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGUSR2, set_drop, False)
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, lambda: loop.quit() or False)
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGINT, lambda: loop.quit() or False)

    print("READY port=%d" % server.get_bound_port(), flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
