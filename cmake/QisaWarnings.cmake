# Warnings for the project's own targets (not for generated or third-party code).
function(qisa_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:C,CXX>:-Wall -Wextra -Wshadow -Wnon-virtual-dtor -Wno-missing-field-initializers>
    $<$<COMPILE_LANGUAGE:CXX>:-Wno-psabi>)
endfunction()
