# Makes flowrun usable from other CMake projects (plugin packs, embedding):
#   find_package(flowrun REQUIRED)  ->  target flowrun::graph
# from the build tree (-Dflowrun_DIR=/path/to/build) or from an install prefix.
include(CMakePackageConfigHelpers)
include(GNUInstallDirs)

set_target_properties(flowrun_graph PROPERTIES EXPORT_NAME graph)
set_target_properties(flowrun_stages PROPERTIES EXPORT_NAME stages)

install(TARGETS flowrun_graph flowrun_stages EXPORT flowrunTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS flowrun RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS flowrun_debug LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/flowrun/plugins)
install(DIRECTORY graph/include/flowrun DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.hpp")
install(FILES ${PROJECT_BINARY_DIR}/graph/generated/flowrun/version.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/flowrun)
install(DIRECTORY stages DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.hpp")
install(EXPORT flowrunTargets NAMESPACE flowrun:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/flowrun)

export(EXPORT flowrunTargets NAMESPACE flowrun:: FILE ${PROJECT_BINARY_DIR}/flowrunTargets.cmake)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/flowrunConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/flowrunConfig.cmake
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/flowrun)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/flowrunConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/flowrunConfig.cmake ${PROJECT_BINARY_DIR}/flowrunConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/flowrun)

# docs/plugins.md is generated from the plugins' declarations; a test fails when stale.
add_custom_target(docs
  COMMAND $<TARGET_FILE:flowrun> plugins --markdown > ${PROJECT_SOURCE_DIR}/docs/plugins.md
  DEPENDS flowrun
  COMMENT "Regenerating docs/plugins.md"
  VERBATIM)
