# Installs jobs/* into PREFIX/share/gentrain/jobs with the line
#   GENTRAIN_PREFIX=""
# filled in with the install prefix, so that an installed job script finds
# PREFIX/bin/gentrain and PREFIX/share/gentrain/configs (run by cmake --install).
file(GLOB jobs "${GT_SOURCE_DIR}/jobs/*")
set(dest "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}/share/gentrain/jobs")
file(MAKE_DIRECTORY "${dest}")
foreach(job ${jobs})
  get_filename_component(name "${job}" NAME)
  file(READ "${job}" body)
  string(REPLACE "GENTRAIN_PREFIX=\"\"" "GENTRAIN_PREFIX=\"${CMAKE_INSTALL_PREFIX}\"" body "${body}")
  message(STATUS "Installing: ${dest}/${name}")
  file(WRITE "${dest}/${name}" "${body}")
  file(CHMOD "${dest}/${name}" PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
       WORLD_READ WORLD_EXECUTE)
endforeach()
