#!/usr/bin/env bash
# Builds the vision_msgs 4.x message package (Python bindings and type support) into the active
# virtual environment with the ROS 2 Jazzy toolchain wheels, for machines without a ROS 2
# installation (CI). The message definitions come from tao_ros.ros.msgdefs (the same text the
# rosbags typestore uses), so both agree.
#   usage: . .venv/bin/activate && bash tools/build_vision_msgs.sh
# The installed files are cached under ${XDG_CACHE_HOME:-~/.cache}/tao_ros by a hash of the inputs
# (this script, the definitions, the toolchain and message wheels' versions).
set -euo pipefail
prefix=${VIRTUAL_ENV:?activate the virtual environment first}
export AMENT_PREFIX_PATH=$prefix${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}
here=$(cd "$(dirname "$0")/.." && pwd)
key=$( (cat "$0" "$here/tao_ros/ros/msgdefs.py"; python -m pip freeze 2>/dev/null | grep -i '^ros-'; python -V) \
       | sha256sum | cut -c1-16)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/tao_ros/vision_msgs-$key.tar
if [ -f "$cache" ]; then
  tar -xf "$cache" -C "$prefix"
  python -c "from vision_msgs.msg import Detection2DArray; Detection2DArray()" \
    && { echo "vision_msgs restored from $cache"; exit 0; }
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src=$work/vision_msgs
mkdir -p "$src/msg"
python - "$src" <<'PY'
import sys
from pathlib import Path

from tao_ros.ros.msgdefs import VISION_MSGS

src = Path(sys.argv[1])
names = []
for full_name, text in VISION_MSGS.items():
    name = full_name.rsplit("/", 1)[1]
    (src / "msg" / f"{name}.msg").write_text(text)
    names.append(f'"msg/{name}.msg"')
(src / "package.xml").write_text("""<?xml version="1.0"?>
<package format="3">
  <name>vision_msgs</name>
  <version>4.1.1</version>
  <description>vision_msgs 4.x messages used by tao_ros, built from tao_ros.ros.msgdefs.</description>
  <maintainer email="tao_ros@example.com">tao_ros</maintainer>
  <license>Apache-2.0</license>
  <buildtool_depend>ament_cmake</buildtool_depend>
  <buildtool_depend>rosidl_default_generators</buildtool_depend>
  <depend>std_msgs</depend>
  <depend>geometry_msgs</depend>
  <exec_depend>rosidl_default_runtime</exec_depend>
  <member_of_group>rosidl_interface_packages</member_of_group>
  <export><build_type>ament_cmake</build_type></export>
</package>
""")
(src / "CMakeLists.txt").write_text(f"""cmake_minimum_required(VERSION 3.16)
project(vision_msgs)
find_package(ament_cmake REQUIRED)
find_package(Python3 REQUIRED COMPONENTS Interpreter Development NumPy)
find_package(rosidl_default_generators REQUIRED)
find_package(std_msgs REQUIRED)
find_package(geometry_msgs REQUIRED)
# The message wheels' exported targets name the Python and numpy include folders of the machine
# that built them; point every imported target at this interpreter's instead.
get_property(imported DIRECTORY PROPERTY IMPORTED_TARGETS)
foreach(target IN LISTS imported)
  get_target_property(dirs ${{target}} INTERFACE_INCLUDE_DIRECTORIES)
  if(dirs)
    set(fixed)
    foreach(dir IN LISTS dirs)
      if(dir MATCHES "numpy" AND NOT EXISTS "${{dir}}")
        list(APPEND fixed ${{Python3_NumPy_INCLUDE_DIRS}})
      elseif(dir MATCHES "include/python3" AND NOT EXISTS "${{dir}}")
        list(APPEND fixed ${{Python3_INCLUDE_DIRS}})
      else()
        list(APPEND fixed "${{dir}}")
      endif()
    endforeach()
    set_target_properties(${{target}} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${{fixed}}")
  endif()
endforeach()
rosidl_generate_interfaces(${{PROJECT_NAME}}
  {" ".join(names)}
  DEPENDENCIES std_msgs geometry_msgs)
ament_export_dependencies(rosidl_default_runtime)
ament_package()
""")
PY
python_exe=$(command -v python)
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" \
  -DCMAKE_PREFIX_PATH="$prefix" -DPython3_EXECUTABLE="$python_exe" -DBUILD_TESTING=OFF \
  -DPYTHON_INSTALL_DIR="lib/python3.11/site-packages" > "$work/configure.log" 2>&1 \
  || { tail -40 "$work/configure.log"; exit 1; }
cmake --build "$work/build" -j "$(nproc)" > "$work/build.log" 2>&1 || { grep -m5 -B2 -A8 -i "error" "$work/build.log"; exit 1; }
cmake --install "$work/build" > /dev/null
python -c "from vision_msgs.msg import Detection2DArray; Detection2DArray()"
mkdir -p "$(dirname "$cache")"
sed "s|^$prefix/||" "$work/build/install_manifest.txt" > "$work/files"
tar -cf "$cache.partial" -C "$prefix" -T "$work/files" && mv "$cache.partial" "$cache"
echo "vision_msgs built into $prefix (cached in $cache)"
