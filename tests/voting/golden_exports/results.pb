META
key;value
description;Bürgerbudget Test
country;Germany
unit;SLUG
instance;YYYY
num_projects;3
num_votes;10
budget;100
vote_type;approval
rule;mes
date_begin;DD.MM.YYYY
date_end;DD.MM.YYYY
PROJECTS
project_id;cost;name;category;district
1;70;A Radweg;;
2;40;B Bänke;;
3;30;C Bäume;;
VOTES
voter_id;vote
N;1,3
N;1,3
N;1,3
N;1,3
N;1,3
N;1,3
N;2
N;2
N;2
N;2
