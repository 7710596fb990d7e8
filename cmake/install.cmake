# install.cmake - what `cmake --install build --prefix P` puts under P, for
# every library the build made (attn_viz is optional):
#   lib/libNAME.a, lib/libNAME.so*   the libraries (NAME: attn, attn_formats, ...)
#   include/attn/*.h, include/*.h    each library's public headers, and the
#                                    compatibility headers of the old paths
#   lib/pkgconfig/NAME.pc            one pkg-config file per library
#   lib/cmake/attn/                  find_package(attn): attn::NAME (shared)
#                                    and attn::NAME_static, per library
#   bin/attn                         the program
# Directories follow GNUInstallDirs; versions are project()'s.
# tests/install/run.sh checks all of it against an installed copy.
include(CMakePackageConfigHelpers)

# Public headers, by the library whose functions they declare.
set(ATTN_HEADERS_attn         attn/attn.h attn/score.h attn/quant.h attn.h attn_score.h)
set(ATTN_HEADERS_attn_formats attn/safetensors.h attn/gguf.h)
set(ATTN_HEADERS_attn_text    attn/text.h attn_tok.h)
set(ATTN_HEADERS_attn_nn      attn/nn.h attn/transformer.h attn/seq2seq.h attn/bert.h attn/llama.h
                              attn_nn.h attn_rnn.h attn_bert.h)
set(ATTN_HEADERS_attn_viz     attn/viz.h attn_viz.h)
set(ATTN_HEADERS_attn_explain attn/explain.h)
set(ATTN_HEADERS_attn_dist    attn/dist.h)

# pkg-config: the attn libraries each one's headers include (Requires, same
# version), what its code needs from the system (Libs.private,
# Requires.private), and its one-line description.
set(ATTN_PC_DEPS_attn_formats attn)
set(ATTN_PC_DEPS_attn_text    attn attn_formats)
set(ATTN_PC_DEPS_attn_nn      attn attn_formats attn_text)
set(ATTN_PC_DEPS_attn_viz     attn)
set(ATTN_PC_DEPS_attn_explain attn attn_formats)
set(ATTN_PC_DEPS_attn_dist    attn)
set(ATTN_PC_REQUIRES_PRIVATE_attn_dist ompi-c)
set(ATTN_PC_LIBS_attn         "-lpthread -lm")
set(ATTN_PC_LIBS_attn_formats "-lm")
set(ATTN_PC_LIBS_attn_nn      "-lm")
set(ATTN_PC_REQUIRES_PRIVATE_attn_viz libpng)
set(ATTN_PC_DESC_attn         "exact attention for CPUs: scaled dot-product attention and scoring functions, forward and backward; block-quantized matrix products")
set(ATTN_PC_DESC_attn_formats "attn's file formats: safetensors and GGUF")
set(ATTN_PC_DESC_attn_text    "attn's tokenizers: WordPiece and byte-level BPE")
set(ATTN_PC_DESC_attn_nn      "attn's transformer toolkit: layers, MHA, optimisers, the transformer, GRU seq2seq, BERT and Llama models")
set(ATTN_PC_DESC_attn_viz     "attn's attention maps as PNG heatmaps")
set(ATTN_PC_DESC_attn_explain "attn's attention explorer: one self-contained HTML page, rollout and relevance")
set(ATTN_PC_LIBS_attn_explain "-lm")
set(ATTN_PC_DESC_attn_dist    "attn's ring attention over MPI: one sequence split across ranks, exact")
set(ATTN_PC_LIBS_attn_dist    "-lm")

set(ATTN_LIBRARIES attn attn_formats attn_text attn_nn attn_viz attn_explain attn_dist)

# Every public header belongs to exactly one library: a new header must be
# added to one of the lists above, or it would not be installed.
file(GLOB ATTN_PUBLIC_HEADERS RELATIVE ${CMAKE_CURRENT_SOURCE_DIR}/include
     ${CMAKE_CURRENT_SOURCE_DIR}/include/*.h ${CMAKE_CURRENT_SOURCE_DIR}/include/attn/*.h)
foreach(h ${ATTN_PUBLIC_HEADERS})
  set(owners)
  foreach(lib ${ATTN_LIBRARIES})
    if(h IN_LIST ATTN_HEADERS_${lib})
      list(APPEND owners ${lib})
    endif()
  endforeach()
  list(LENGTH owners n_owners)
  if(NOT n_owners EQUAL 1)
    message(FATAL_ERROR "include/${h} is listed under ${n_owners} libraries in cmake/install.cmake "
                        "(ATTN_HEADERS_*); it must be listed under exactly one")
  endif()
endforeach()

set(ATTN_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/attn)

# The .pc files locate the prefix from their own directory, so an installed
# tree can be moved (or staged with DESTDIR) and still be right.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(ATTN_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH pc_up "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
  string(REGEX REPLACE "/$" "" pc_up "${pc_up}")
  set(ATTN_PC_PREFIX "\${pcfiledir}/${pc_up}")
endif()
foreach(dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${dir}}")
    set(ATTN_PC_${dir} "${CMAKE_INSTALL_${dir}}")
  else()
    set(ATTN_PC_${dir} "\${prefix}/${CMAKE_INSTALL_${dir}}")
  endif()
endforeach()

foreach(lib ${ATTN_LIBRARIES})
  if(NOT TARGET ${lib}_shared)
    continue()
  endif()
  install(TARGETS ${lib}_shared ${lib}_static EXPORT ${lib}Targets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
          RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  install(EXPORT ${lib}Targets NAMESPACE attn:: DESTINATION ${ATTN_CMAKE_DIR})
  foreach(h ${ATTN_HEADERS_${lib}})
    get_filename_component(sub ${h} DIRECTORY)
    install(FILES include/${h} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/${sub})
  endforeach()

  set(ATTN_PC_NAME ${lib})
  set(ATTN_PC_DESCRIPTION "${ATTN_PC_DESC_${lib}}")
  set(ATTN_PC_REQUIRES)
  foreach(dep ${ATTN_PC_DEPS_${lib}})
    list(APPEND ATTN_PC_REQUIRES "${dep} = ${PROJECT_VERSION}")
  endforeach()
  string(REPLACE ";" ", " ATTN_PC_REQUIRES "${ATTN_PC_REQUIRES}")
  set(ATTN_PC_REQUIRES_PRIVATE "${ATTN_PC_REQUIRES_PRIVATE_${lib}}")
  set(ATTN_PC_LIBS_PRIVATE "${ATTN_PC_LIBS_${lib}}")
  configure_file(cmake/attn.pc.in pkgconfig/${lib}.pc @ONLY)
  install(FILES ${CMAKE_CURRENT_BINARY_DIR}/pkgconfig/${lib}.pc
          DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endforeach()

configure_package_config_file(cmake/attnConfig.cmake.in attnConfig.cmake
                              INSTALL_DESTINATION ${ATTN_CMAKE_DIR})
# 0.x: a new minor version may change the API, so only the same minor matches.
write_basic_package_version_file(attnConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/attnConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/attnConfigVersion.cmake
        DESTINATION ${ATTN_CMAKE_DIR})

if(TARGET attn_cli)
  install(TARGETS attn_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
