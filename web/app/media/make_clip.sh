#!/bin/sh
# The player's demo clip, made once and committed (web/app/media/clip.webm): 40 s, so a
# viewer passes the VIDEO policy's 30 s threshold before it ends; 160x90 at 10 fps,
# VP9 (every Chromium and Firefox plays it), no audio, ~40 kbit/s: well under 500 KB.
# Needs ffmpeg (Debian: apt-get install -y ffmpeg). Run from web/app: sh media/make_clip.sh
set -eu
ffmpeg -y -hide_banner -loglevel error \
  -f lavfi -i "testsrc2=size=160x90:rate=10:duration=40" \
  -c:v libvpx-vp9 -b:v 30k -deadline good -cpu-used 4 -row-mt 1 \
  -pix_fmt yuv420p -an -map_metadata -1 -fflags +bitexact \
  media/clip.webm
